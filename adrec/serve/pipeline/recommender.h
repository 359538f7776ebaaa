// The recommend pipeline of `adrec serve` (DESIGN.md "Serving"): retrieval (two-tower query
// tower + FAISS index, plus fresh items; the most clicked items without a retrieval bundle) →
// frequency caps → ranking by the multi-task ranker (candidates of concurrent requests in one
// forward pass) → creative per ad, eCPM, pacing and diversity. Requests queue for a batching
// thread (retrieval and the ranker's rows), which hands each batch to a ranking thread (the
// ranker and re-ranking), so batch n + 1 is retrieved while batch n is ranked. A reload loads the
// new bundles beside the old and swaps them in between two batches, so a request finishes on the
// models it started with.
// Torch-free header: the HTTP layer and the CLI include it without libtorch's headers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "adrec/core/status.h"
#include "adrec/serve/api.h"
#include "adrec/serve/event_store.h"
#include "adrec/serve/metrics.h"
#include "adrec/serve/rerank.h"

namespace adrec::serve {

struct RecommenderOptions {
  std::filesystem::path bundle;     // the ranking bundle (ranking kind: DCN-V2, MMoE, …)
  std::filesystem::path retrieval;  // optional: a two-tower bundle with an index (adrec index)
  std::filesystem::path data;       // the dataset the bundles were trained on: catalogue and base log
  std::string device = "cpu";
  // libtorch intra-op threads of the ranker (0 = 1) and OpenMP threads of the index search.
  // One each by default: requests are parallel across the batch, and two OpenMP runtimes
  // (libtorch's and FAISS's) spinning on the same cores cost more than they give.
  int threads = 0;
  int index_threads = 1;
  // The dense layers' arithmetic on the CPU (models/precision.h): auto = bf16 GEMMs where the
  // CPU multiplies bf16 natively (AMX, AVX512-BF16), fp32 elsewhere; process-wide.
  std::string precision = "auto";
  // > 0: every this many seconds, reload when `bundle` (a link, as the online learner's
  // out/current) resolves to another directory than the one serving.
  double watch_seconds = 0;
  size_t max_batch = 32;     // requests ranked in one forward pass
  size_t retrieve_k = 500;   // candidates the index returns
  size_t rank_k = 100;       // candidates the ranker scores
  size_t fresh_k = 10;       // of which fresh (cold-start) items not yet in the retrieved set
  size_t history_limit = 200;  // newest events of a user the features read
  int ef_search = 0;         // per-request index effort; 0 = the index's own
  int nprobe = 0;
  // Item column grouping creatives into ads (one answer per ad, its best creative by pCTR);
  // absent from the catalogue: every item is its own ad and creative.
  std::string ad_column = "ad";
  // Creative variants (adrec creatives) and the bandit that picks one per answered ad
  // (creative/bandit.h: thompson, linucb, random, first); empty: the best-pCTR creative.
  std::filesystem::path creatives;
  std::string creative_policy = "thompson";
  // LinUCB's context: the viewer's age, gender, device and scene, plus (when true) the ranking
  // bundle's embedding of the user.
  bool creative_user_embedding = false;
  RerankOptions rerank;
  // The exposure floor's advertisers by name (the catalogue's advertiser column), resolved into
  // rerank.floor_advertisers at start; rerank.floor_slots says how many slots they get.
  std::vector<std::string> floor_advertiser_names;
  // Daily budgets by advertiser name (the catalogue's advertiser column); others are unpaced.
  std::unordered_map<std::string, double> daily_budgets;
};

struct RecommendedItem {
  std::string item_id;      // the ad
  std::string creative_id;  // the creative shown (the item itself without ad groups)
  std::string creative_title;  // the chosen variant's text (with --creatives)
  float score = 0.f;        // what the answer is ordered by: eCPM
  float pctr = 0.f, pcvr = 1.f;
  double ecpm = 0;
  // With "explain": the features that moved the pCTR most (integrated gradients of its logit
  // against the all-zero input, models/explain.h), largest magnitude first.
  std::vector<std::pair<std::string, float>> reasons;
};

struct Recommendation {
  std::vector<RecommendedItem> items;
  std::string model_version;
  bool known_user = false;
  size_t retrieved = 0;  // candidates before caps and ranking
  size_t ranked = 0;
};

class Recommender {
 public:
  // Loads the bundles and the catalogue, starts the batching and ranking threads and answers one
  // warm-up request (an unknown user) before it returns. The bundle's and the
  // dataset's own errors name their files; InvalidArgument when the dataset is not the one the
  // bundle was trained on or the bundle's features cannot be served.
  static StatusOr<std::unique_ptr<Recommender>> Start(RecommenderOptions options, EventStore* store);
  ~Recommender();  // Stop()
  Recommender(const Recommender&) = delete;
  Recommender& operator=(const Recommender&) = delete;

  // Blocks until the batching thread has answered. `now` is the request's time (unix seconds):
  // the context key "ts" when given, else the wall clock.
  StatusOr<Recommendation> Recommend(const RecommendRequest& request);
  // Stores the events (idempotent, durable before return) and charges served impressions to
  // their advertiser's budget; returns how many were new.
  StatusOr<size_t> Ingest(const std::vector<EventIn>& events);
  // The user's catalogue attributes, totals and newest events (stored ones and the base log's).
  StatusOr<nlohmann::ordered_json> User(const std::string& user_id, size_t limit);
  // Loads the bundles again from their paths (a new training run wrote them), answers one
  // warm-up request with them, and swaps them in; on error the serving models stay as they were.
  Status Reload();
  nlohmann::ordered_json Models() const;
  std::string version() const;
  size_t queue_depth() const;
  uint64_t batches() const;  // forward passes so far (requests / batches = mean batch)
  // Time spent per stage, in pipeline order. Per request: "state" (the store read and the
  // history) and "queue" (waiting for a batch). Per batch: "query" (the query tower's features
  // and forward pass), "search" (the index), "features" (candidates and their rows), "rank"
  // (embeddings and the ranker) and "rerank" (creatives, eCPM, pacing, the answers).
  std::vector<std::pair<std::string, LatencyHistogram>> StageLatency() const;
  // Answers what is queued, then stops the batching thread; later calls answer Cancelled.
  void Stop();

  struct Impl;

 private:
  explicit Recommender(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace adrec::serve
