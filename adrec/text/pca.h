// PCA that reduces language-model embeddings to the few dimensions a ranker takes (32 by
// default, as the seed's production system did): fitted on the training part, saved beside the
// dataset so serving projects new items the same way.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <map>
#include <string>

#include "adrec/core/status.h"

namespace adrec::text {

struct Pca {
  torch::Tensor mean;        // [d] float32
  torch::Tensor components;  // [k, d] float32, rows by decreasing variance, sign-fixed
  double explained = 0;      // share of the total variance the k components keep

  // x [n, d] -> [n, k].
  torch::Tensor Transform(const torch::Tensor& x) const;
};

// Fits k components on x [n, d] (float64 inside). k must be in [1, min(n, d)]; InvalidArgument
// otherwise, naming both.
StatusOr<Pca> FitPca(const torch::Tensor& x, int64_t k);

Status SavePca(const Pca& pca, const std::filesystem::path& path, const std::map<std::string, std::string>& metadata);
// The bytes SavePca writes (for a caller that stores them later).
StatusOr<std::string> SerializePca(const Pca& pca, const std::map<std::string, std::string>& metadata);
StatusOr<Pca> LoadPca(const std::filesystem::path& path, std::map<std::string, std::string>* metadata = nullptr);

}  // namespace adrec::text
