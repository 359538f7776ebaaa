#include "adrec/index/vector_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>

#include <omp.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <unordered_set>

#include "adrec/core/file.h"

namespace adrec::index {
namespace {

namespace fs = std::filesystem;

// FAISS's own rule of thumb: k-means wants at least this many points per centroid.
constexpr int64_t kMinPointsPerCentroid = 39;

StatusOr<int64_t> ParseInt(std::string_view key, std::string_view value, int64_t lo, int64_t hi) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size()) {
    return InvalidArgumentError("index parameter '" + std::string(key) + "': '" + std::string(value) +
                                "' is not an integer");
  }
  if (v < lo || v > hi) {
    return InvalidArgumentError("index parameter '" + std::string(key) + "' = " + std::to_string(v) +
                                " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return v;
}

// The largest divisor of dim that is at most dim / 2 (2+ dimensions per PQ sub-quantizer).
int DefaultPqM(int dim) {
  for (int m = std::max(1, dim / 2); m > 1; --m) {
    if (dim % m == 0) return m;
  }
  return 1;
}

int DefaultNlist(size_t n) {
  const auto by_sqrt = static_cast<int64_t>(4.0 * std::sqrt(static_cast<double>(n)));
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(by_sqrt, static_cast<int64_t>(n) / kMinPointsPerCentroid)));
}

std::string Describe(const faiss::Index& index) {
  if (const auto* h = dynamic_cast<const faiss::IndexHNSW*>(&index)) {
    return "HNSW" + std::to_string(h->hnsw.nb_neighbors(1)) + ",Flat";
  }
  if (const auto* ivf = dynamic_cast<const faiss::IndexIVFPQ*>(&index)) {
    return "IVF" + std::to_string(ivf->nlist) + ",PQ" + std::to_string(ivf->pq.M) + "x" + std::to_string(ivf->pq.nbits);
  }
  return "Flat";
}

}  // namespace

std::string_view IndexKindName(IndexKind kind) { return kIndexKindNames[static_cast<size_t>(kind)]; }

StatusOr<IndexOptions> ParseIndexOptions(std::string_view kind, std::string_view params) {
  IndexOptions o;
  const auto* it = std::find(std::begin(kIndexKindNames), std::end(kIndexKindNames), kind);
  if (it == std::end(kIndexKindNames)) {
    return InvalidArgumentError("unknown index kind '" + std::string(kind) + "' (expected flat, hnsw or ivfpq)");
  }
  o.kind = static_cast<IndexKind>(it - std::begin(kIndexKindNames));
  constexpr int64_t kMax = int64_t{1} << 30;
  size_t pos = 0;
  while (pos < params.size()) {
    size_t comma = params.find(',', pos);
    if (comma == std::string_view::npos) comma = params.size();
    const std::string_view item = params.substr(pos, comma - pos);
    pos = comma + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgumentError("index parameter '" + std::string(item) + "' is not key=value");
    }
    const std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
    auto set = [&](auto* field, int64_t lo, int64_t hi) -> Status {
      auto v = ParseInt(key, value, lo, hi);
      if (!v.ok()) return v.status();
      *field = static_cast<std::remove_pointer_t<decltype(field)>>(*v);
      return Status::Ok();
    };
    Status s;
    if (key == "m") s = set(&o.hnsw_m, 2, 512);
    else if (key == "ef_construction") s = set(&o.ef_construction, 1, kMax);
    else if (key == "ef_search") s = set(&o.ef_search, 1, kMax);
    else if (key == "nlist") s = set(&o.nlist, 1, kMax);
    else if (key == "pq_m") s = set(&o.pq_m, 1, 4096);
    else if (key == "pq_bits") s = set(&o.pq_bits, 1, 16);
    else if (key == "nprobe") s = set(&o.nprobe, 1, kMax);
    else if (key == "train_points") s = set(&o.train_points, 0, int64_t{1} << 40);
    else if (key == "seed") s = set(&o.seed, 0, std::numeric_limits<int64_t>::max());
    else {
      return InvalidArgumentError("unknown index parameter '" + std::string(key) +
                                  "' (m, ef_construction, ef_search, nlist, pq_m, pq_bits, nprobe, "
                                  "train_points, seed)");
    }
    if (!s.ok()) return s;
  }
  return o;
}

VectorIndex::VectorIndex(std::unique_ptr<faiss::Index> index, IndexKind kind, std::string description)
    : index_(std::move(index)), kind_(kind), description_(std::move(description)) {}
VectorIndex::VectorIndex(VectorIndex&&) noexcept = default;
VectorIndex& VectorIndex::operator=(VectorIndex&&) noexcept = default;
VectorIndex::~VectorIndex() = default;

size_t VectorIndex::size() const { return static_cast<size_t>(index_->ntotal); }
int VectorIndex::dim() const { return index_->d; }

StatusOr<VectorIndex> VectorIndex::Build(std::span<const float> vectors, int dim, const IndexOptions& o) {
  if (dim <= 0) return InvalidArgumentError("index dimension must be positive, got " + std::to_string(dim));
  if (vectors.empty() || vectors.size() % static_cast<size_t>(dim) != 0) {
    return InvalidArgumentError("index input holds " + std::to_string(vectors.size()) +
                                " floats, not a positive multiple of the dimension " + std::to_string(dim));
  }
  const size_t n = vectors.size() / static_cast<size_t>(dim);
  for (size_t i = 0; i < vectors.size(); ++i) {
    if (!std::isfinite(vectors[i])) {
      return InvalidArgumentError("index input vector " + std::to_string(i / dim) + " has a non-finite value");
    }
  }
  std::string factory;
  int nlist = 0, pq_m = 0;
  switch (o.kind) {
    case IndexKind::kFlat: factory = "Flat"; break;
    case IndexKind::kHnsw: factory = "HNSW" + std::to_string(o.hnsw_m) + ",Flat"; break;
    case IndexKind::kIvfPq: {
      nlist = o.nlist > 0 ? o.nlist : DefaultNlist(n);
      pq_m = o.pq_m > 0 ? o.pq_m : DefaultPqM(dim);
      if (dim % pq_m != 0) {
        return InvalidArgumentError("ivfpq: pq_m = " + std::to_string(pq_m) + " does not divide the dimension " +
                                    std::to_string(dim));
      }
      const int64_t need = std::max<int64_t>(nlist, int64_t{1} << o.pq_bits);
      const int64_t have = o.train_points > 0 ? std::min<int64_t>(o.train_points, n) : static_cast<int64_t>(n);
      if (have < need) {
        return InvalidArgumentError("ivfpq: " + std::to_string(have) + " training vectors for nlist = " +
                                    std::to_string(nlist) + " and 2^pq_bits = " + std::to_string(1 << o.pq_bits) +
                                    " centroids; need at least " + std::to_string(need) +
                                    " (use flat or hnsw for a catalogue this small)");
      }
      factory = "IVF" + std::to_string(nlist) + ",PQ" + std::to_string(pq_m) + "x" + std::to_string(o.pq_bits);
      break;
    }
  }
  try {
    std::unique_ptr<faiss::Index> index(faiss::index_factory(dim, factory.c_str(), faiss::METRIC_INNER_PRODUCT));
    if (auto* h = dynamic_cast<faiss::IndexHNSW*>(index.get())) {
      h->hnsw.efConstruction = o.ef_construction;
      h->hnsw.efSearch = o.ef_search;
    }
    if (auto* ivf = dynamic_cast<faiss::IndexIVFPQ*>(index.get())) {
      ivf->nprobe = static_cast<size_t>(std::min(o.nprobe, nlist));
      // The factory turns on polysemous training (simulated annealing of the PQ codes for
      // Hamming pre-filtering, which adrec never searches with): minutes for nothing.
      ivf->do_polysemous_training = false;
      ivf->cp.seed = static_cast<int>(o.seed);
      ivf->pq.cp.seed = static_cast<int>(o.seed + 1);
      if (o.train_points > 0 && static_cast<size_t>(o.train_points) < n) {
        // A seeded sample of rows, so a rebuild with the same seed gives the same index.
        std::vector<size_t> rows(n);
        std::iota(rows.begin(), rows.end(), size_t{0});
        std::mt19937_64 rng(o.seed);
        std::shuffle(rows.begin(), rows.end(), rng);
        rows.resize(static_cast<size_t>(o.train_points));
        std::vector<float> sample(rows.size() * dim);
        for (size_t i = 0; i < rows.size(); ++i) {
          std::copy_n(vectors.data() + rows[i] * dim, dim, sample.data() + i * dim);
        }
        index->train(static_cast<faiss::Index::idx_t>(rows.size()), sample.data());
      } else {
        index->train(static_cast<faiss::Index::idx_t>(n), vectors.data());
      }
    }
    index->add(static_cast<faiss::Index::idx_t>(n), vectors.data());
    std::string description = Describe(*index);
    return VectorIndex(std::move(index), o.kind, std::move(description));
  } catch (const std::exception& e) {
    return InternalError("building the " + factory + " index failed: " + e.what());
  }
}

StatusOr<VectorIndex> VectorIndex::Read(const fs::path& path) {
  auto bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  std::unique_ptr<faiss::Index> index;
  try {
    faiss::VectorIOReader reader;
    reader.data.assign(bytes->begin(), bytes->end());
    index.reset(faiss::read_index(&reader));
  } catch (const std::exception& e) {
    return DataLossError(path.string() + ": not a readable FAISS index (" + e.what() + ")");
  }
  if (index->metric_type != faiss::METRIC_INNER_PRODUCT) {
    return InvalidArgumentError(path.string() + ": the index ranks by L2 distance; adrec scores by inner product");
  }
  IndexKind kind;
  if (dynamic_cast<const faiss::IndexHNSW*>(index.get()) && dynamic_cast<const faiss::IndexFlat*>(
                                                                  dynamic_cast<const faiss::IndexHNSW*>(index.get())->storage)) {
    kind = IndexKind::kHnsw;
  } else if (dynamic_cast<const faiss::IndexIVFPQ*>(index.get())) {
    kind = IndexKind::kIvfPq;
  } else if (dynamic_cast<const faiss::IndexFlat*>(index.get())) {
    kind = IndexKind::kFlat;
  } else {
    return InvalidArgumentError(path.string() + ": a FAISS index of a kind adrec does not serve (flat, hnsw, ivfpq)");
  }
  std::string description = Describe(*index);
  return VectorIndex(std::move(index), kind, std::move(description));
}

Status VectorIndex::Write(const fs::path& path) const {
  faiss::VectorIOWriter writer;
  try {
    faiss::write_index(index_.get(), &writer);
  } catch (const std::exception& e) {
    return InternalError("serialising the index failed: " + std::string(e.what()));
  }
  return AtomicWriteFile(path, std::string_view(reinterpret_cast<const char*>(writer.data.data()), writer.data.size()));
}

StatusOr<SearchResult> VectorIndex::Search(std::span<const float> queries, int k, const SearchOptions& options) const {
  const auto d = static_cast<size_t>(index_->d);
  if (k <= 0) return InvalidArgumentError("k must be positive, got " + std::to_string(k));
  if (queries.size() % d != 0) {
    return InvalidArgumentError("queries hold " + std::to_string(queries.size()) +
                                " floats, not a multiple of the index dimension " + std::to_string(d));
  }
  SearchResult r;
  r.queries = queries.size() / d;
  r.k = k;
  r.ids.assign(r.queries * k, -1);
  r.scores.assign(r.queries * k, -std::numeric_limits<float>::infinity());
  if (r.queries == 0) return r;
  faiss::SearchParametersHNSW hnsw;
  faiss::SearchParametersIVF ivf;
  const faiss::SearchParameters* params = nullptr;
  if (kind_ == IndexKind::kHnsw && options.ef_search > 0) {
    hnsw.efSearch = options.ef_search;
    params = &hnsw;
  } else if (kind_ == IndexKind::kIvfPq && options.nprobe > 0) {
    ivf.nprobe = static_cast<size_t>(options.nprobe);
    params = &ivf;
  }
  if (options.threads > 0) omp_set_num_threads(options.threads);  // this thread's later parallel regions
  // Below 20 queries FAISS scores a flat index (and an IVF index's coarse centroids) one query at
  // a time with its scalar dot product when built without SIMD, as Debian's is; one sgemm (MKL,
  // see cmake/Torch.cmake) is faster from a single query on, so it is used for any count.
  static const bool blas_always = [] {
    faiss::distance_compute_blas_threshold = 1;
    return true;
  }();
  (void)blas_always;
  try {
    index_->search(static_cast<faiss::Index::idx_t>(r.queries), queries.data(), k, r.scores.data(), r.ids.data(), params);
  } catch (const std::exception& e) {
    return InternalError("index search failed: " + std::string(e.what()));
  }
  return r;
}

double RecallAtK(const SearchResult& approx, const SearchResult& exact, int k) {
  const size_t nq = std::min(approx.queries, exact.queries);
  const int kk = std::min({k, approx.k, exact.k});
  if (nq == 0 || kk <= 0) return 0.0;
  size_t found = 0, total = 0;
  for (size_t q = 0; q < nq; ++q) {
    std::unordered_set<int64_t> want;
    for (int j = 0; j < kk; ++j) {
      if (exact.ids[q * exact.k + j] >= 0) want.insert(exact.ids[q * exact.k + j]);
    }
    total += want.size();
    for (int j = 0; j < kk; ++j) found += want.erase(approx.ids[q * approx.k + j]);  // a repeated id counts once
  }
  return total ? static_cast<double>(found) / static_cast<double>(total) : 0.0;
}

}  // namespace adrec::index
