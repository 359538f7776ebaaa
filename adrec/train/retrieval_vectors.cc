#include "adrec/train/retrieval_vectors.h"

#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <numeric>
#include <limits>
#include <random>

#include "adrec/data/dataset_io.h"
#include "adrec/data/features.h"
#include "adrec/data/split.h"
#include "adrec/models/bundle.h"
#include "adrec/models/two_tower.h"
#include "adrec/tensor/device.h"
#include "adrec/eval/ranking.h"
#include "adrec/train/ranking_model.h"
#include "adrec/train/retrieval_towers.h"
#include "adrec/train/train_config.h"
#include "adrec/train/trainer.h"

namespace adrec::train {
namespace {

// Runs `tower` over batches of `count` rows that `fill` builds, and appends target t's slice.
template <typename Fill, typename Tower>
std::vector<float> RunTower(RankingModel& m, size_t count, size_t batch_size, int t, bool l2_normalize, Fill fill,
                            Tower tower) {
  torch::NoGradGuard no_grad;
  m.net->eval();
  std::vector<float> out;
  data::Batch batch;
  for (size_t start = 0; start < count; start += batch_size) {
    const size_t n = std::min(batch_size, count - start);
    fill(start, n, &batch);
    auto lookup = m.embeddings->Forward(batch, /*train=*/false, /*step=*/0);
    torch::Tensor v = tower(lookup.input).select(1, t).to(torch::kFloat32);
    if (l2_normalize) v = torch::nn::functional::normalize(v, torch::nn::functional::NormalizeFuncOptions().dim(-1));
    v = v.contiguous().cpu();
    out.insert(out.end(), v.data_ptr<float>(), v.data_ptr<float>() + v.numel());
  }
  return out;
}

}  // namespace

std::vector<float> CatalogueVectors(RankingModel& m, models::TwoTowerModel& towers, const data::Dataset& ds, int t,
                                    size_t batch_size, bool l2_normalize) {
  std::vector<uint32_t> ids(ds.num_items());
  std::iota(ids.begin(), ids.end(), 0u);
  return RunTower(
      m, ids.size(), batch_size, t, l2_normalize,
      [&](size_t start, size_t n, data::Batch* batch) {
        data::BuildItemBatch(ds, m.spec, std::span<const uint32_t>(ids.data() + start, n), batch);
      },
      [&](const embedding::ModelInput& in) { return towers.ItemVectors(in); });
}

std::vector<float> QueryTowerVectors(RankingModel& m, models::TwoTowerModel& towers, const data::Dataset& ds,
                                     const data::SampleSet& samples, std::span<const uint64_t> order, int t,
                                     size_t batch_size, bool l2_normalize) {
  return RunTower(
      m, order.size(), batch_size, t, l2_normalize,
      [&](size_t start, size_t n, data::Batch* batch) {
        data::BuildBatch(ds, m.spec, samples, order.subspan(start, n), batch);
      },
      [&](const embedding::ModelInput& in) { return towers.QueryVectors(in); });
}

std::vector<uint64_t> SeededSubset(size_t n, size_t max, uint64_t seed) {
  std::vector<uint64_t> order(n);
  std::iota(order.begin(), order.end(), uint64_t{0});
  if (order.size() > max) {
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    order.resize(max);
    std::sort(order.begin(), order.end());
  }
  return order;
}

bool RetrievalNormalizes(const nlohmann::json& manifest) {
  const auto it = manifest.find("retrieval");
  return it != manifest.end() && it->is_object() && it->value("l2_normalize", false);
}

namespace {

// Full ranking of the catalogue for every query by `score` (eval/ranking.h), with one relevant
// item per query: the report of RetrievalReport and PopularityReport.
StatusOr<nlohmann::ordered_json> FullRankingReport(uint32_t num_items, std::span<const uint32_t> query_items,
                                                   const std::function<void(uint32_t, std::span<float>)>& score,
                                                   const RetrievalReportOptions& options) {
  eval::RankingTask task;
  task.num_items = num_items;
  for (size_t q = 0; q < query_items.size(); ++q) task.Add(static_cast<uint32_t>(q), query_items[q]);
  eval::RankingOptions ro;
  ro.ks = options.ks;
  ro.coverage_ks = {options.ks.empty() ? 10u : options.ks.front()};
  ro.exclude_seen = false;  // the whole catalogue: what the index searches
  ro.threads = options.threads;
  ADREC_ASSIGN_OR_RETURN(eval::RankingResult r, eval::EvaluateFullRanking(task, score, ro));
  nlohmann::ordered_json out;
  for (const auto& [k, v] : r.Metrics()) out[k] = v;
  out["items"] = task.num_items;
  return out;
}

}  // namespace

StatusOr<nlohmann::ordered_json> RetrievalReport(std::span<const float> items, std::span<const float> queries, int dim,
                                                 std::span<const uint32_t> query_items,
                                                 const RetrievalReportOptions& options) {
  if (dim <= 0 || items.size() % dim != 0 || queries.size() != query_items.size() * static_cast<size_t>(dim)) {
    return InvalidArgumentError("retrieval report: vector sizes do not match the dimension and query count");
  }
  // Exact inner products: the ranking an exact index returns.
  auto score = [&](uint32_t q, std::span<float> out) {
    const float* qv = queries.data() + static_cast<size_t>(q) * dim;
    for (size_t i = 0; i < out.size(); ++i) {
      const float* iv = items.data() + i * dim;
      float s = 0.f;
      for (int j = 0; j < dim; ++j) s += qv[j] * iv[j];
      out[i] = s;
    }
  };
  return FullRankingReport(static_cast<uint32_t>(items.size() / dim), query_items, score, options);
}

StatusOr<nlohmann::ordered_json> PopularityReport(std::span<const float> popularity, std::span<const uint32_t> query_items,
                                                  const RetrievalReportOptions& options) {
  for (uint32_t item : query_items) {
    if (item >= popularity.size()) return InvalidArgumentError("popularity report: a query's item is past the catalogue");
  }
  auto score = [&](uint32_t, std::span<float> out) { std::copy_n(popularity.begin(), out.size(), out.begin()); };
  return FullRankingReport(static_cast<uint32_t>(popularity.size()), query_items, score, options);
}

StatusOr<RetrievalVectors> ComputeRetrievalVectors(const RetrievalVectorOptions& o) {
  try {
    ADREC_ASSIGN_OR_RETURN(torch::Device device, tensor::ParseDevice(o.device));
    if (o.threads > 0) at::set_num_threads(o.threads);
    if (o.batch_size == 0) return InvalidArgumentError("batch size must be positive");
    ADREC_ASSIGN_OR_RETURN(LoadedBundle b, LoadBundle(o.bundle, device));
    RankingModel& m = b.model;
    auto* two_tower = dynamic_cast<models::TwoTowerModel*>(m.net.get());
    if (two_tower == nullptr) {
      return InvalidArgumentError(o.bundle.string() + " holds a '" + b.manifest.value("model", std::string("?")) +
                                  "' model; a retrieval index needs a two_tower bundle (its item tower is "
                                  "independent of the user)");
    }
    const std::string target = o.target.empty() ? b.manifest.value("primary_target", std::string()) : o.target;
    int t = target.empty() ? 0 : m.spec.TargetIndex(target);
    if (t < 0) return InvalidArgumentError("--target '" + target + "' is not a target of " + o.bundle.string());
    ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(o.data));
    if (Status s = m.spec.Bind(ds); !s.ok()) {
      return Status(s.code(), "the dataset does not fit the bundle's features: " + s.message());
    }
    RetrievalVectors r;
    r.target = m.spec.targets[t].name;
    r.manifest = std::move(b.manifest);

    const bool normalize = RetrievalNormalizes(r.manifest);
    r.items = CatalogueVectors(m, *two_tower, ds, t, o.batch_size, normalize);
    r.dim = static_cast<int>(r.items.size() / std::max<size_t>(1, ds.num_items()));

    if (o.max_queries == 0) return r;
    data::SplitPart part = data::SplitPart::kTest;
    if (o.part == "train") part = data::SplitPart::kTrain;
    else if (o.part == "valid") part = data::SplitPart::kValid;
    else if (o.part != "test") return InvalidArgumentError("--split '" + o.part + "' is not one of test, valid, train");
    ADREC_ASSIGN_OR_RETURN(data::Split split, EvalSplit(r.manifest, o.split_dir, ds));
    ADREC_ASSIGN_OR_RETURN(data::SampleSet samples, data::MakeSamples(ds, m.spec, &split, part));
    // Queries: the part's positives of the target (an event whose item retrieval should find).
    data::SampleSet positives = data::PositiveSamples(samples, m.spec.targets.size(), static_cast<size_t>(t));
    const std::vector<uint64_t> order = SeededSubset(positives.size(), o.max_queries, o.seed);
    for (uint64_t s : order) {
      r.query_items.push_back(ds.events.item[positives.events[s]]);
      r.query_users.push_back(ds.events.user[positives.events[s]]);
    }
    r.queries = QueryTowerVectors(m, *two_tower, ds, positives, order, t, o.batch_size, normalize);
    ADREC_ASSIGN_OR_RETURN(data::SampleSet train, data::MakeSamples(ds, m.spec, &split, data::SplitPart::kTrain));
    const data::SampleSet train_positives = data::PositiveSamples(train, m.spec.targets.size(), static_cast<size_t>(t));
    r.train_popularity.assign(ds.num_items(), 0.f);
    for (uint64_t e : train_positives.events) r.train_popularity[ds.events.item[e]] += 1.f;
    return r;
  } catch (const c10::Error& e) {
    return InternalError(std::string("libtorch: ") + e.what_without_backtrace());
  }
}

Status RecordRetrievalIndex(const std::filesystem::path& bundle, const nlohmann::ordered_json& entry) {
  return models::EditBundleManifest(bundle, [&](nlohmann::ordered_json& m) { m["index"] = entry; });
}

StatusOr<nlohmann::ordered_json> EvaluateRetrieval(const EvalOptions& o) {
  if (o.part == "all") return InvalidArgumentError("--split all: retrieval queries come from one part (test, valid or train)");
  RetrievalVectorOptions vo;
  vo.bundle = o.bundle;
  vo.data = o.data;
  vo.split_dir = o.split_dir;
  vo.part = o.part;
  vo.max_queries = std::numeric_limits<size_t>::max();
  vo.device = o.device;
  vo.threads = o.threads;
  vo.batch_size = o.batch_size;
  ADREC_ASSIGN_OR_RETURN(RetrievalVectors v, ComputeRetrievalVectors(vo));
  if (v.num_queries() == 0) return FailedPreconditionError("no positives of '" + v.target + "' in the '" + o.part + "' part");
  RetrievalReportOptions ro;
  ro.threads = o.threads > 0 ? static_cast<size_t>(o.threads) : 0;
  ADREC_ASSIGN_OR_RETURN(nlohmann::ordered_json report, RetrievalReport(v.items, v.queries, v.dim, v.query_items, ro));
  nlohmann::ordered_json out;
  out["bundle"] = o.bundle.string();
  out["model"] = v.manifest.value("model", "");
  out["protocol"] = "retrieval";
  out["part"] = o.part;
  out["target"] = v.target;
  out["queries"] = v.num_queries();
  for (auto it = report.begin(); it != report.end(); ++it) out[it.key()] = *it;
  // The same queries ranked by train-part popularity: what the towers must beat.
  ADREC_ASSIGN_OR_RETURN(out["popularity"], PopularityReport(v.train_popularity, v.query_items, ro));
  return out;
}

}  // namespace adrec::train
