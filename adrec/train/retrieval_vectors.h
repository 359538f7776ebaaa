// The vectors a retrieval index is built from and checked with: a two-tower bundle's item tower
// over every item of the catalogue, and its query tower over held-out positive events (whose
// item is the one retrieval should find). Torch-free header: `adrec index` and the server
// reach it without libtorch's headers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adrec/core/status.h"

namespace adrec::train {

struct RetrievalVectorOptions {
  std::filesystem::path bundle;
  std::filesystem::path data;
  std::filesystem::path split_dir;  // default: the split recorded in the bundle
  std::string part = "test";        // the part queries come from: test | valid | train
  std::string target;               // the tower slice used; default: the bundle's primary target
  size_t max_queries = 2000;        // 0: no queries (index only)
  uint64_t seed = 1;                // which positives become queries when there are more
  std::string device = "cpu";
  int threads = 0;
  size_t batch_size = 8192;
};

struct RetrievalVectors {
  int dim = 0;
  std::string target;
  std::vector<float> items;           // [num_items × dim], row = dense item ID
  std::vector<float> queries;         // [num_queries × dim]
  std::vector<uint32_t> query_items;  // the item each query's event was about
  std::vector<uint32_t> query_users;
  // Positives of the target per item in the split's train part (with queries only): the
  // popularity retriever the towers are compared with on the same queries.
  std::vector<float> train_popularity;
  nlohmann::ordered_json manifest;    // the bundle's manifest
  size_t num_items() const { return dim ? items.size() / dim : 0; }
  size_t num_queries() const { return query_items.size(); }
};

// InvalidArgument when the bundle is not a two-tower ranking bundle or the target is unknown;
// the bundle's and dataset's own errors otherwise.
StatusOr<RetrievalVectors> ComputeRetrievalVectors(const RetrievalVectorOptions& options);

struct RetrievalReportOptions {
  std::vector<uint32_t> ks = {10, 50, 100};
  size_t threads = 0;
};
// Exact retrieval over the whole catalogue by inner product: HR@K, NDCG@K (one relevant item per
// query, eval/ranking.h's full ranking, ties pessimistic), MRR, coverage of the first K.
// items [num_items × dim], queries [n × dim], query_items [n].
StatusOr<nlohmann::ordered_json> RetrievalReport(std::span<const float> items, std::span<const float> queries, int dim,
                                                 std::span<const uint32_t> query_items,
                                                 const RetrievalReportOptions& options = {});

// The same report for a ranking that ignores the query: every query ranks the catalogue by
// `popularity` [num_items] (the most popular first, ties pessimistic).
StatusOr<nlohmann::ordered_json> PopularityReport(std::span<const float> popularity, std::span<const uint32_t> query_items,
                                                  const RetrievalReportOptions& options = {});

// Records a retrieval index beside the bundle's weights: manifest key "index" = entry (file,
// kind, target, figures), keeping the other keys and their order.
Status RecordRetrievalIndex(const std::filesystem::path& bundle, const nlohmann::ordered_json& entry);

}  // namespace adrec::train
