#include "adrec/index/vector_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/index_io.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <thread>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "adrec/core/build_paths.h"
#include "adrec/core/file.h"
#include "adrec/core/process.h"
#include "adrec/core/testing.h"

namespace adrec::index {
namespace {

namespace fs = std::filesystem;

constexpr int kDim = 32;

#if defined(__SANITIZE_ADDRESS__)
struct ScopedLeakCheckOff {
  ScopedLeakCheckOff() { __lsan_disable(); }
  ~ScopedLeakCheckOff() { __lsan_enable(); }
};
#else
struct ScopedLeakCheckOff {
  ScopedLeakCheckOff() {}  // user-provided: no unused-variable warning where it does nothing
};
#endif

// Vectors around a few hundred centres, like item embeddings of a catalogue (uniform noise
// would make every neighbour list a tie and recall meaningless).
std::vector<float> Clustered(size_t n, int dim, uint64_t seed, size_t centres = 200) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> c(centres * dim);
  for (float& x : c) x = g(rng);
  std::vector<float> v(n * dim);
  std::uniform_int_distribution<size_t> pick(0, centres - 1);
  for (size_t i = 0; i < n; ++i) {
    const size_t k = pick(rng);
    for (int j = 0; j < dim; ++j) v[i * dim + j] = c[k * dim + j] + 0.3f * g(rng);
  }
  return v;
}

// Unit rows: the towers of a retrieval bundle compare by cosine (train.l2_normalize).
std::vector<float> Unit(std::vector<float> v, int dim) {
  for (size_t i = 0; i < v.size(); i += dim) {
    double n = 0;
    for (int j = 0; j < dim; ++j) n += double{v[i + j]} * v[i + j];
    for (int j = 0; j < dim; ++j) v[i + j] = static_cast<float>(v[i + j] / std::sqrt(n));
  }
  return v;
}

// Top-k by a plain loop over dot products: the reference every index is checked against.
std::vector<std::vector<int64_t>> BruteForce(const std::vector<float>& base, const std::vector<float>& queries,
                                             int dim, int k) {
  const size_t n = base.size() / dim, nq = queries.size() / dim;
  std::vector<std::vector<int64_t>> out(nq);
  std::vector<std::pair<double, int64_t>> scored(n);
  for (size_t q = 0; q < nq; ++q) {
    for (size_t i = 0; i < n; ++i) {
      double s = 0;
      for (int j = 0; j < dim; ++j) s += double{queries[q * dim + j]} * base[i * dim + j];
      scored[i] = {-s, static_cast<int64_t>(i)};
    }
    std::partial_sort(scored.begin(), scored.begin() + k, scored.end());
    for (int j = 0; j < k; ++j) out[q].push_back(scored[j].second);
  }
  return out;
}

VectorIndex MustBuild(const std::vector<float>& v, std::string_view kind, std::string_view params = "") {
  auto o = ParseIndexOptions(kind, params);
  EXPECT_TRUE(o.ok()) << o.status().ToString();
  auto idx = VectorIndex::Build(v, kDim, *o);
  EXPECT_TRUE(idx.ok()) << idx.status().ToString();
  return std::move(*idx);
}

SearchResult MustSearch(const VectorIndex& idx, const std::vector<float>& q, int k, SearchOptions so = {}) {
  auto r = idx.Search(q, k, so);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(*r);
}

TEST(VectorIndex, FlatIsExactAgainstBruteForce) {
  const auto base = Clustered(2000, kDim, 1);
  const auto queries = Clustered(50, kDim, 2);
  const VectorIndex idx = MustBuild(base, "flat");
  EXPECT_EQ(idx.size(), 2000u);
  EXPECT_EQ(idx.dim(), kDim);
  EXPECT_EQ(idx.description(), "Flat");
  const SearchResult r = MustSearch(idx, queries, 10);
  const auto want = BruteForce(base, queries, kDim, 10);
  for (size_t q = 0; q < 50; ++q) {
    const auto got = r.Ids(q);
    EXPECT_EQ(std::vector<int64_t>(got.begin(), got.end()), want[q]) << "query " << q;
    for (int j = 1; j < 10; ++j) EXPECT_GE(r.scores[q * 10 + j - 1], r.scores[q * 10 + j]);
  }
}

TEST(VectorIndex, HnswAndIvfPqRecallAgainstExact) {
  const auto base = Unit(Clustered(20000, kDim, 3), kDim);
  const auto queries = Unit(Clustered(200, kDim, 4), kDim);
  const SearchResult exact = MustSearch(MustBuild(base, "flat"), queries, 10);
  const VectorIndex hnsw = MustBuild(base, "hnsw");
  EXPECT_EQ(hnsw.description(), "HNSW32,Flat");
  const double r_hnsw = RecallAtK(MustSearch(hnsw, queries, 10), exact, 10);
  const VectorIndex ivfpq = MustBuild(base, "ivfpq", "nlist=128,nprobe=16");
  EXPECT_EQ(ivfpq.description(), "IVF128,PQ16x8");
  const double r_ivfpq = RecallAtK(MustSearch(ivfpq, queries, 10), exact, 10);
  std::cout << "recall@10 against exact: hnsw " << r_hnsw << ", ivfpq " << r_ivfpq << "\n";
  EXPECT_GT(r_hnsw, 0.95);
  EXPECT_GT(r_ivfpq, 0.6);
  // More search effort finds more: the per-query options reach FAISS.
  const double r_narrow = RecallAtK(MustSearch(hnsw, queries, 10, {.ef_search = 10}), exact, 10);
  const double r_one_list = RecallAtK(MustSearch(ivfpq, queries, 10, {.nprobe = 1}), exact, 10);
  EXPECT_LT(r_narrow, r_hnsw);
  EXPECT_LT(r_one_list, r_ivfpq);
  EXPECT_DOUBLE_EQ(RecallAtK(exact, exact, 10), 1.0);
}

TEST(VectorIndex, WriteReadKeepsResultsAndSearchParameters) {
  const auto base = Clustered(5000, kDim, 5);
  const auto queries = Clustered(20, kDim, 6);
  ScopedTempDir dir("index");
  for (const char* kind : {"flat", "hnsw", "ivfpq"}) {
    const VectorIndex idx = MustBuild(base, kind, std::string_view(kind) == "ivfpq" ? "nlist=64,nprobe=8" : "");
    const fs::path path = dir.path() / (std::string(kind) + ".faiss");
    ASSERT_TRUE(idx.Write(path).ok());
    auto back = VectorIndex::Read(path);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->kind(), idx.kind()) << kind;
    EXPECT_EQ(back->description(), idx.description()) << kind;
    EXPECT_EQ(MustSearch(*back, queries, 10).ids, MustSearch(idx, queries, 10).ids) << kind;
  }
}

TEST(VectorIndex, SameSeedSameIvfPqIndex) {
  const auto base = Clustered(5000, kDim, 7);
  const auto queries = Clustered(20, kDim, 8);
  const char* params = "nlist=32,train_points=3000,seed=9";
  EXPECT_EQ(MustSearch(MustBuild(base, "ivfpq", params), queries, 10).ids,
            MustSearch(MustBuild(base, "ivfpq", params), queries, 10).ids);
}

TEST(VectorIndex, ConcurrentSearchesAgreeWithOneThread) {
  const auto base = Clustered(5000, kDim, 9);
  const auto queries = Clustered(64, kDim, 10);
  const VectorIndex idx = MustBuild(base, "hnsw");
  const SearchResult want = MustSearch(idx, queries, 5);
  std::vector<std::vector<int64_t>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      for (size_t q = 0; q < 64; ++q) {
        auto r = idx.Search(std::span<const float>(queries.data() + q * kDim, kDim), 5, {.ef_search = 128});
        if (r.ok()) got[t].insert(got[t].end(), r->ids.begin(), r->ids.end());
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& g : got) EXPECT_EQ(g, want.ids);
}

TEST(VectorIndex, BadOptionsAndInputsNameTheProblem) {
  auto msg = [](const Status& s) { return s.ToString(); };
  EXPECT_NE(msg(ParseIndexOptions("annoy", "").status()).find("unknown index kind 'annoy'"), std::string::npos);
  EXPECT_NE(msg(ParseIndexOptions("hnsw", "mm=3").status()).find("unknown index parameter 'mm'"), std::string::npos);
  EXPECT_NE(msg(ParseIndexOptions("hnsw", "m=x").status()).find("'x' is not an integer"), std::string::npos);
  EXPECT_NE(msg(ParseIndexOptions("hnsw", "m=1").status()).find("outside [2, 512]"), std::string::npos);
  EXPECT_NE(msg(ParseIndexOptions("hnsw", "m").status()).find("not key=value"), std::string::npos);

  const auto base = Clustered(300, kDim, 11);
  auto o = *ParseIndexOptions("ivfpq", "pq_m=5");
  EXPECT_NE(msg(VectorIndex::Build(base, kDim, o).status()).find("pq_m = 5 does not divide the dimension 32"),
            std::string::npos);
  o = *ParseIndexOptions("ivfpq", "train_points=200");
  EXPECT_NE(msg(VectorIndex::Build(base, kDim, o).status()).find("need at least 256"), std::string::npos);
  o = *ParseIndexOptions("ivfpq", "nlist=301,pq_bits=4");
  EXPECT_NE(msg(VectorIndex::Build(base, kDim, o).status()).find("need at least 301"), std::string::npos);
  std::vector<float> nan = base;
  nan[40] = std::nanf("");
  EXPECT_NE(msg(VectorIndex::Build(nan, kDim, {}).status()).find("vector 1 has a non-finite value"), std::string::npos);
  EXPECT_FALSE(VectorIndex::Build(std::vector<float>(31), kDim, {}).ok());
  EXPECT_FALSE(VectorIndex::Build({}, kDim, {}).ok());

  const VectorIndex idx = MustBuild(base, "flat");
  EXPECT_FALSE(idx.Search(std::vector<float>(33), 5).ok());
  EXPECT_FALSE(idx.Search(std::vector<float>(32), 0).ok());
  // Asking for more than the index holds pads with -1.
  const SearchResult all = MustSearch(idx, std::vector<float>(base.begin(), base.begin() + kDim), 400);
  EXPECT_EQ(std::count(all.ids.begin(), all.ids.end(), -1), 100);
}

TEST(VectorIndex, CorruptOrForeignFilesAreErrorsNamingTheFile) {
  ScopedTempDir dir("index");
  const fs::path junk = dir.path() / "junk.faiss";
  ASSERT_TRUE(AtomicWriteFile(junk, "not an index at all").ok());
  auto r = VectorIndex::Read(junk);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().ToString().find(junk.string()), std::string::npos) << r.status().ToString();

  const VectorIndex idx = MustBuild(Clustered(500, kDim, 12), "hnsw");
  const fs::path good = dir.path() / "good.faiss", cut = dir.path() / "cut.faiss";
  ASSERT_TRUE(idx.Write(good).ok());
  auto bytes = ReadFile(good);
  ASSERT_TRUE(bytes.ok());
  ASSERT_TRUE(AtomicWriteFile(cut, bytes->substr(0, bytes->size() / 2)).ok());
  {
    // FAISS 1.7.3's read_index leaks the half-read index when a truncated file throws (raw
    // pointers in its index_read.cpp): that leak is theirs, so LeakSanitizer skips this read.
    ScopedLeakCheckOff faiss_leaks_on_error;
    r = VectorIndex::Read(cut);
  }
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().ToString().find("cut.faiss"), std::string::npos) << r.status().ToString();

  // An L2 index would rank far vectors first under our inner-product scores: refused.
  faiss::IndexFlatL2 l2(kDim);
  const fs::path l2_path = dir.path() / "l2.faiss";
  faiss::write_index(&l2, l2_path.c_str());
  r = VectorIndex::Read(l2_path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().ToString().find("L2"), std::string::npos) << r.status().ToString();
  EXPECT_FALSE(VectorIndex::Read(dir.path() / "missing.faiss").ok());
}

// Python's faiss (the PyPI wheel, a newer FAISS than Debian's) reads our files and finds the same
// neighbours.
TEST(VectorIndex, PythonFaissReadsOurFiles) {
  std::string probe;
  if (RunCommand(std::string("'") + build_paths::Python() + "' -c 'import faiss, numpy'", &probe) != 0) {
    ADREC_SKIP_WITHOUT_REFERENCE(std::string(build_paths::Python()) + " cannot import faiss (run scripts/setup): " + probe);
  }
  const auto base = Clustered(3000, kDim, 13);
  const auto queries = Clustered(5, kDim, 14);
  ScopedTempDir dir("index");
  for (const char* kind : {"flat", "hnsw", "ivfpq"}) {
    const VectorIndex idx = MustBuild(base, kind, std::string_view(kind) == "ivfpq" ? "nlist=32,nprobe=32" : "");
    const fs::path path = dir.path() / "items.faiss", qpath = dir.path() / "q.f32";
    ASSERT_TRUE(idx.Write(path).ok());
    ASSERT_TRUE(AtomicWriteFile(qpath, std::string_view(reinterpret_cast<const char*>(queries.data()),
                                                        queries.size() * sizeof(float)))
                    .ok());
    const std::string script =
        "import faiss, numpy, sys\n"
        "index = faiss.read_index(sys.argv[1])\n"
        "q = numpy.fromfile(sys.argv[2], dtype=numpy.float32).reshape(-1, index.d)\n"
        "_, ids = index.search(q, 10)\n"
        "print(index.ntotal, ' '.join(str(int(i)) for i in ids.ravel()))\n";
    ASSERT_TRUE(AtomicWriteFile(dir.path() / "read.py", script).ok());
    std::string out;
    ASSERT_EQ(RunCommand(std::string("'") + build_paths::Python() + "' " + (dir.path() / "read.py").string() + " " +
                             path.string() + " " + qpath.string(),
                         &out),
              0)
        << out;
    const SearchResult ours = MustSearch(idx, queries, 10);
    std::string want = "3000";
    for (int64_t id : ours.ids) want += " " + std::to_string(id);
    EXPECT_EQ(out.substr(0, out.find_last_not_of('\n') + 1), want) << kind;
  }
}

}  // namespace
}  // namespace adrec::index
