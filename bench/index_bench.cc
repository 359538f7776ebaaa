// The retrieval index against plain FAISS on the same vectors: build time and single-query
// searches per second (the server searches one user at a time), our VectorIndex against
// faiss::index_factory + Index::search called directly. Runs alternate, and the figure is the
// median ratio with its spread over the repeats (these machines are noisy).
//   index_bench [--items 1000000] [--dim 32] [--queries 2000] [--k 500] [--repeats 5] [--kinds flat,hnsw,ivfpq]
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/index_factory.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "adrec/index/vector_index.h"

namespace {

using Clock = std::chrono::steady_clock;
using adrec::index::VectorIndex;

double Seconds(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<float> Clustered(size_t n, int dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  const size_t centres = 1000;
  std::vector<float> c(centres * dim);
  for (float& x : c) x = g(rng);
  std::vector<float> v(n * dim);
  for (size_t i = 0; i < n; ++i) {
    const size_t k = rng() % centres;
    for (int j = 0; j < dim; ++j) v[i * dim + j] = c[k * dim + j] + 0.3f * g(rng);
  }
  return v;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t items = 1000000, queries = 2000;
  int dim = 32, k = 500, repeats = 5;
  std::string kinds = "flat,hnsw,ivfpq";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--items") items = std::stoul(v);
    else if (a == "--dim") dim = std::stoi(v);
    else if (a == "--queries") queries = std::stoul(v);
    else if (a == "--k") k = std::stoi(v);
    else if (a == "--repeats") repeats = std::stoi(v);
    else if (a == "--kinds") kinds = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const std::vector<float> base = Clustered(items, dim, 1);
  const std::vector<float> q = Clustered(queries, dim, 2);
  std::printf("index_bench: %zu items, dim %d, %zu single queries, k %d, %d alternated repeats\n", items, dim, queries,
              k, repeats);
  std::printf("%-6s %-18s %10s %10s %12s %12s %14s\n", "kind", "faiss", "build_s", "faiss_s", "qps", "faiss_qps",
              "qps ratio (spread)");
  std::stringstream kinds_in(kinds);
  for (std::string kind; std::getline(kinds_in, kind, ',');) {
    auto opts = adrec::index::ParseIndexOptions(kind, "");
    if (!opts.ok()) {
      std::fprintf(stderr, "%s\n", opts.status().ToString().c_str());
      return 2;
    }
    auto t = Clock::now();
    auto ours = VectorIndex::Build(base, dim, *opts);
    const double build_ours = Seconds(t);
    if (!ours.ok()) {
      std::fprintf(stderr, "%s\n", ours.status().ToString().c_str());
      return 1;
    }
    // The same index made by hand with FAISS's own calls and the same parameters.
    t = Clock::now();
    std::unique_ptr<faiss::Index> plain(faiss::index_factory(dim, ours->description().c_str(), faiss::METRIC_INNER_PRODUCT));
    if (auto* h = dynamic_cast<faiss::IndexHNSW*>(plain.get())) {
      h->hnsw.efConstruction = opts->ef_construction;
      h->hnsw.efSearch = opts->ef_search;
    }
    if (auto* ivf = dynamic_cast<faiss::IndexIVFPQ*>(plain.get())) {
      ivf->nprobe = opts->nprobe;
      ivf->do_polysemous_training = false;
      ivf->cp.seed = static_cast<int>(opts->seed);
      ivf->pq.cp.seed = static_cast<int>(opts->seed + 1);
      plain->train(static_cast<faiss::Index::idx_t>(items), base.data());
    }
    plain->add(static_cast<faiss::Index::idx_t>(items), base.data());
    const double build_plain = Seconds(t);

    std::vector<double> ours_qps, plain_qps, ratio;
    std::vector<float> dist(k);
    std::vector<faiss::Index::idx_t> ids(k);
    for (int r = 0; r < repeats; ++r) {
      t = Clock::now();
      for (size_t i = 0; i < queries; ++i) {
        auto res = ours->Search(std::span<const float>(q.data() + i * dim, dim), k);
        if (!res.ok()) return 1;
      }
      ours_qps.push_back(queries / Seconds(t));
      t = Clock::now();
      for (size_t i = 0; i < queries; ++i) plain->search(1, q.data() + i * dim, k, dist.data(), ids.data());
      plain_qps.push_back(queries / Seconds(t));
      ratio.push_back(ours_qps.back() / plain_qps.back());
    }
    std::printf("%-6s %-18s %10.2f %10.2f %12.0f %12.0f %8.3f (%.3f-%.3f)\n", kind.c_str(), ours->description().c_str(),
                build_ours, build_plain, Median(ours_qps), Median(plain_qps), Median(ratio),
                *std::min_element(ratio.begin(), ratio.end()), *std::max_element(ratio.begin(), ratio.end()));
    std::fflush(stdout);
  }
  return 0;
}
