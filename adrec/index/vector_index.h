// Nearest-neighbour search over item vectors by inner product (DESIGN.md "Retrieval"): FAISS
// indexes behind one small class, built from a kind name and parameters the way our models are
// built from theirs. The file is FAISS's own format, so Python's faiss.read_index opens it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adrec/core/status.h"

namespace faiss {
struct Index;
}

namespace adrec::index {

enum class IndexKind : uint8_t { kFlat, kHnsw, kIvfPq };

inline constexpr std::string_view kIndexKindNames[] = {"flat", "hnsw", "ivfpq"};

struct IndexOptions {
  IndexKind kind = IndexKind::kFlat;
  // HNSW (Malkov & Yashunin 2018): links per node and the beam widths of building and search.
  int hnsw_m = 32;
  int ef_construction = 200;
  int ef_search = 128;
  // IVF-PQ (Jégou et al. 2011): coarse lists (0: 4·√n, FAISS's guideline), sub-quantizers
  // (0: the largest divisor of dim that is ≤ dim/2), bits per sub-code, lists probed per query.
  int nlist = 0;
  int pq_m = 0;
  int pq_bits = 8;
  int nprobe = 16;
  // Points the k-means of IVF-PQ trains on (0: all, capped at 256 per centroid by FAISS).
  int64_t train_points = 0;
  uint64_t seed = 1234;
};

// "flat" | "hnsw" | "ivfpq" and "key=value,key=value" (m, ef_construction, ef_search, nlist,
// pq_m, pq_bits, nprobe, train_points, seed); unknown kinds and keys are errors naming them.
StatusOr<IndexOptions> ParseIndexOptions(std::string_view kind, std::string_view params);
std::string_view IndexKindName(IndexKind kind);

// Row-major [queries × k]; ids are row numbers of the vectors the index was built from, -1 where
// the index holds fewer than k (scores there are -inf).
struct SearchResult {
  size_t queries = 0;
  int k = 0;
  std::vector<int64_t> ids;
  std::vector<float> scores;
  std::span<const int64_t> Ids(size_t q) const { return {ids.data() + q * k, static_cast<size_t>(k)}; }
};

// Per-query search effort; 0 keeps what the index was built or read with.
struct SearchOptions {
  int ef_search = 0;
  int nprobe = 0;
  // OpenMP threads of this search on the calling thread (0: FAISS's default, every core). A
  // server passes 1: FAISS's OpenMP runtime and libtorch's are two, and their spinning threads
  // on the same cores cost a request tens of milliseconds.
  int threads = 0;
};

class VectorIndex {
 public:
  // Builds over `vectors` [n × dim] (row r gets id r). InvalidArgument for empty input, a size
  // that is not a multiple of dim, non-finite values, or IVF-PQ parameters that do not fit.
  static StatusOr<VectorIndex> Build(std::span<const float> vectors, int dim, const IndexOptions& options);
  // A file written by Write (or by FAISS): the error names the file.
  static StatusOr<VectorIndex> Read(const std::filesystem::path& path);

  VectorIndex(VectorIndex&&) noexcept;
  VectorIndex& operator=(VectorIndex&&) noexcept;
  ~VectorIndex();

  // Atomic (temp file, fsync, rename): a reader sees the old index or the new one.
  Status Write(const std::filesystem::path& path) const;
  // Top-k by inner product for `queries` [nq × dim]. Safe to call from several threads at once.
  StatusOr<SearchResult> Search(std::span<const float> queries, int k, const SearchOptions& options = {}) const;

  size_t size() const;
  int dim() const;
  IndexKind kind() const { return kind_; }
  // FAISS's factory string of this index ("HNSW32,Flat", "IVF1024,PQ16x8", "Flat").
  const std::string& description() const { return description_; }
  // The FAISS index itself (benchmarks compare the wrapper against calling it directly).
  const faiss::Index& faiss_index() const { return *index_; }

 private:
  VectorIndex(std::unique_ptr<faiss::Index> index, IndexKind kind, std::string description);
  std::unique_ptr<faiss::Index> index_;
  IndexKind kind_;
  std::string description_;
};

// The fraction of exact's top-k ids that approx found (over all queries): recall@k.
double RecallAtK(const SearchResult& approx, const SearchResult& exact, int k);

}  // namespace adrec::index
