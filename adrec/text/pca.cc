#include "adrec/text/pca.h"

#include <torch/torch.h>

#include "adrec/core/safetensors.h"
#include "adrec/tensor/tensor_io.h"

namespace adrec::text {

torch::Tensor Pca::Transform(const torch::Tensor& x) const {
  return torch::matmul(x.to(torch::kFloat32) - mean, components.t());
}

StatusOr<Pca> FitPca(const torch::Tensor& x, int64_t k) {
  if (x.dim() != 2) return InvalidArgumentError("PCA needs a matrix [rows, dims], got " + std::to_string(x.dim()) + " dims");
  const int64_t n = x.size(0), d = x.size(1);
  if (k < 1 || k > std::min(n, d)) {
    return InvalidArgumentError("PCA to " + std::to_string(k) + " dimensions needs at least that many rows and dims; got " +
                                std::to_string(n) + " rows of " + std::to_string(d));
  }
  torch::NoGradGuard no_grad;
  torch::Tensor xd = x.to(torch::kCPU, torch::kFloat64);
  torch::Tensor mean = xd.mean(0);
  torch::Tensor centered = xd - mean;
  torch::Tensor cov = torch::matmul(centered.t(), centered) / static_cast<double>(std::max<int64_t>(1, n - 1));
  auto [values, vectors] = torch::linalg_eigh(cov);  // ascending
  torch::Tensor top = vectors.flip(1).narrow(1, 0, k).t().contiguous();  // [k, d]
  // Sign convention: each component's largest-magnitude entry is positive (deterministic output).
  torch::Tensor idx = top.abs().argmax(1, /*keepdim=*/true);
  top = top * top.gather(1, idx).sign();
  const double total = values.clamp_min(0).sum().item<double>();
  Pca pca;
  pca.mean = mean.to(torch::kFloat32);
  pca.components = top.to(torch::kFloat32);
  pca.explained = total > 0 ? values.flip(0).narrow(0, 0, k).clamp_min(0).sum().item<double>() / total : 0.0;
  return pca;
}

namespace {

std::map<std::string, std::string> WithExplained(const Pca& pca, std::map<std::string, std::string> metadata) {
  metadata["explained_variance"] = std::to_string(pca.explained);
  return metadata;
}

}  // namespace

Status SavePca(const Pca& pca, const std::filesystem::path& path, const std::map<std::string, std::string>& metadata) {
  return tensor::SaveTensors(path, {{"mean", pca.mean}, {"components", pca.components}}, WithExplained(pca, metadata));
}

StatusOr<std::string> SerializePca(const Pca& pca, const std::map<std::string, std::string>& metadata) {
  torch::Tensor mean = pca.mean.to(torch::kCPU, torch::kFloat32).contiguous();
  torch::Tensor comp = pca.components.to(torch::kCPU, torch::kFloat32).contiguous();
  auto view = [](const char* name, const torch::Tensor& t) {
    return TensorView{name, Dtype::kF32, t.sizes().vec(),
                      std::span<const std::byte>(static_cast<const std::byte*>(t.data_ptr()), t.nbytes())};
  };
  const std::vector<TensorView> views = {view("components", comp), view("mean", mean)};
  return SerializeSafetensors(views, WithExplained(pca, metadata));
}

StatusOr<Pca> LoadPca(const std::filesystem::path& path, std::map<std::string, std::string>* metadata) {
  std::map<std::string, std::string> meta;
  ADREC_ASSIGN_OR_RETURN(auto tensors, tensor::LoadTensors(path, torch::kCPU, &meta));
  auto mean = tensors.find("mean"), comp = tensors.find("components");
  if (mean == tensors.end() || comp == tensors.end() || comp->second.dim() != 2 || mean->second.dim() != 1 ||
      comp->second.size(1) != mean->second.size(0)) {
    return DataLossError(path.string() + ": not a PCA file (needs mean [d] and components [k, d])");
  }
  Pca pca{mean->second.to(torch::kFloat32), comp->second.to(torch::kFloat32), 0.0};
  if (auto it = meta.find("explained_variance"); it != meta.end()) pca.explained = std::atof(it->second.c_str());
  if (metadata) *metadata = std::move(meta);
  return pca;
}

}  // namespace adrec::text
