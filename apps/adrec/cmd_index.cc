// adrec index: the retrieval index of a two-tower bundle. Embeds every item of the catalogue with
// the item tower, builds a FAISS index (flat, hnsw or ivfpq), checks it against exact search on
// held-out positives (recall@K of the index, HR@K of retrieval), and writes it into the bundle.
#include <chrono>

#include "adrec/core/log_line.h"
#include "adrec/index/vector_index.h"
#include "adrec/train/retrieval_vectors.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

struct IndexCommandOptions {
  train::RetrievalVectorOptions vectors;
  std::string kind = "hnsw";
  std::string params;
  fs::path out;  // default: <bundle>/index.faiss
  int k = 100;
};

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

// Share of queries whose own item is in the top k of `r`: HR@k of retrieval over the catalogue.
double HitRate(const index::SearchResult& r, const std::vector<uint32_t>& items, int k) {
  if (items.empty()) return 0.0;
  size_t hits = 0;
  for (size_t q = 0; q < items.size(); ++q) {
    const auto ids = r.Ids(q);
    hits += std::find(ids.begin(), ids.begin() + std::min(k, r.k), static_cast<int64_t>(items[q])) !=
            ids.begin() + std::min(k, r.k);
  }
  return static_cast<double>(hits) / static_cast<double>(items.size());
}

// Searches one query at a time, as the server does; returns the results and queries per second.
StatusOr<std::pair<index::SearchResult, double>> SearchOneByOne(const index::VectorIndex& idx,
                                                                 const std::vector<float>& queries, int k) {
  const size_t d = static_cast<size_t>(idx.dim()), nq = queries.size() / d;
  index::SearchResult all;
  all.queries = nq;
  all.k = k;
  const auto start = Clock::now();
  for (size_t q = 0; q < nq; ++q) {
    ADREC_ASSIGN_OR_RETURN(index::SearchResult r, idx.Search(std::span<const float>(queries.data() + q * d, d), k));
    all.ids.insert(all.ids.end(), r.ids.begin(), r.ids.end());
    all.scores.insert(all.scores.end(), r.scores.begin(), r.scores.end());
  }
  const double s = Seconds(start);
  return std::make_pair(std::move(all), s > 0 ? static_cast<double>(nq) / s : 0.0);
}

StatusOr<ordered_json> RunIndex(const IndexCommandOptions& o) {
  ADREC_ASSIGN_OR_RETURN(index::IndexOptions io, index::ParseIndexOptions(o.kind, o.params));
  if (o.k <= 0) return InvalidArgumentError("--k must be positive, got " + std::to_string(o.k));
  LogInfo("embedding the catalogue with the item tower of " + o.vectors.bundle.string());
  auto start = Clock::now();
  ADREC_ASSIGN_OR_RETURN(train::RetrievalVectors v, train::ComputeRetrievalVectors(o.vectors));
  const double embed_s = Seconds(start);
  LogInfo("building " + o.kind + " over " + std::to_string(v.num_items()) + " items of dimension " +
          std::to_string(v.dim));
  start = Clock::now();
  ADREC_ASSIGN_OR_RETURN(index::VectorIndex idx, index::VectorIndex::Build(v.items, v.dim, io));
  const double build_s = Seconds(start);
  const fs::path out = o.out.empty() ? o.vectors.bundle / "index.faiss" : o.out;
  ADREC_RETURN_IF_ERROR(idx.Write(out));

  ordered_json r;
  r["bundle"] = o.vectors.bundle.string();
  r["index"] = out.string();
  r["kind"] = o.kind;
  r["description"] = idx.description();
  r["target"] = v.target;
  r["items"] = v.num_items();
  r["dim"] = v.dim;
  r["embed_seconds"] = embed_s;
  r["build_seconds"] = build_s;
  r["queries"] = v.num_queries();
  if (v.num_queries() > 0) {
    const int k = std::min<int>(o.k, static_cast<int>(v.num_items()));
    ADREC_ASSIGN_OR_RETURN(index::VectorIndex exact, index::VectorIndex::Build(v.items, v.dim, {}));
    ADREC_ASSIGN_OR_RETURN(auto exact_run, SearchOneByOne(exact, v.queries, k));
    ADREC_ASSIGN_OR_RETURN(auto ann_run, SearchOneByOne(idx, v.queries, k));
    ordered_json recall, hr, hr_exact;
    for (int at : {10, 50, 100, k}) {
      if (at > k || recall.contains("@" + std::to_string(at))) continue;
      const std::string key = "@" + std::to_string(at);
      recall[key] = index::RecallAtK(ann_run.first, exact_run.first, at);
      hr[key] = HitRate(ann_run.first, v.query_items, at);
      hr_exact[key] = HitRate(exact_run.first, v.query_items, at);
    }
    r["query_part"] = o.vectors.part;
    r["recall_vs_exact"] = recall;    // how much of exact search's top K the index returns
    r["hit_rate"] = hr;               // the query's own item in the index's top K
    r["hit_rate_exact"] = hr_exact;   // the same with exact search: what the model allows
    r["queries_per_second"] = ann_run.second;
    r["exact_queries_per_second"] = exact_run.second;
  }
  ordered_json entry;
  entry["file"] = out.parent_path() == o.vectors.bundle ? out.filename().string() : out.string();
  for (const char* key : {"kind", "description", "target", "items", "dim", "recall_vs_exact", "hit_rate"}) {
    if (r.contains(key)) entry[key] = r[key];
  }
  entry["params"] = o.params;
  ADREC_RETURN_IF_ERROR(train::RecordRetrievalIndex(o.vectors.bundle, entry));
  return r;
}

}  // namespace

void AddIndexCommand(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<IndexCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "index", "Build the retrieval index of a two-tower bundle (FAISS flat, hnsw or ivfpq) and check it against exact search");
  cmd->add_option("--bundle", o->vectors.bundle, "Two-tower bundle directory from `adrec train`")->required();
  cmd->add_option("--data", o->vectors.data, "Dataset directory (the catalogue and the held-out queries)")->required();
  cmd->add_option("--kind", o->kind, "flat (exact), hnsw or ivfpq")->capture_default_str()->check(CLI::IsMember({"flat", "hnsw", "ivfpq"}));
  cmd->add_option("--params", o->params,
                  "key=value,…: m, ef_construction, ef_search (hnsw); nlist, pq_m, pq_bits, nprobe, train_points, seed (ivfpq)");
  cmd->add_option("--out", o->out, "Index file (default: <bundle>/index.faiss, recorded in its manifest)");
  cmd->add_option("--target", o->vectors.target, "Target whose tower slice is indexed (default: the bundle's primary)");
  cmd->add_option("--k", o->k, "Depth of the recall and hit-rate checks")->capture_default_str();
  cmd->add_option("--queries", o->vectors.max_queries, "Held-out positives used as queries (0 = none)")->capture_default_str();
  cmd->add_option("--split", o->vectors.part, "Part the queries come from")->capture_default_str()->check(CLI::IsMember({"test", "valid", "train"}));
  cmd->add_option("--split-dir", o->vectors.split_dir, "Split directory (default: the split recorded in the bundle)");
  cmd->add_option("--device", o->vectors.device, "cpu, cuda or cuda:N (the towers; FAISS runs on the CPU)")->capture_default_str();
  cmd->add_option("--threads", o->vectors.threads, "Threads (0 = all cores)")->capture_default_str();
  AddJsonFlag(cmd, ctx);
  cmd->callback([o, &ctx] {
    ctx.run = [o, &ctx]() -> Status {
      ADREC_ASSIGN_OR_RETURN(ordered_json result, RunIndex(*o));
      PrintResult(ctx, result);
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
