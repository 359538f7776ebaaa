#include "adrec/eval/baselines.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <unordered_map>

#include "adrec/core/hash.h"
#include "adrec/core/thread_pool.h"
#include "adrec/eval/metrics.h"

namespace adrec::eval {

using data::Action;
using data::SplitPart;

namespace {

constexpr uint8_t kTrain = static_cast<uint8_t>(SplitPart::kTrain);

bool IsTrainPositive(const Dataset& ds, const Split& split, size_t i) {
  return split.part[i] == kTrain && split.IsPositive(ds.events.action[i]);
}

// ---- random ----
class RandomRecommender final : public Recommender {
 public:
  explicit RandomRecommender(uint64_t seed) : seed_(seed) {}
  Status Fit(const Dataset& ds, const Split& split) override { return data::CheckSplitMatches(split, ds); }
  void Score(uint32_t user, std::span<const uint32_t>, std::span<float> scores) const override {
    // A hash of (seed, user, item): reproducible and independent of thread scheduling.
    const uint64_t useed = HashId(user, seed_);
    for (size_t i = 0; i < scores.size(); ++i) scores[i] = static_cast<float>(HashId(i, useed) >> 40) * 0x1.0p-24f;
  }
  std::string name() const override { return "random"; }

 private:
  uint64_t seed_;
};

// ---- pop ----
class PopularityRecommender final : public Recommender {
 public:
  Status Fit(const Dataset& ds, const Split& split) override {
    ADREC_RETURN_IF_ERROR(data::CheckSplitMatches(split, ds));
    counts_.assign(ds.num_items(), 0.f);
    for (size_t i = 0; i < ds.num_events(); ++i) {
      if (IsTrainPositive(ds, split, i)) counts_[ds.events.item[i]] += 1.f;
    }
    return Status::Ok();
  }
  void Score(uint32_t, std::span<const uint32_t>, std::span<float> scores) const override {
    std::copy_n(counts_.begin(), std::min(counts_.size(), scores.size()), scores.begin());
  }
  std::string name() const override { return "pop"; }

 private:
  std::vector<float> counts_;
};

// ---- pop_scene ----
// Popularity within the scene the user is most active in (train events); ties within a scene
// are broken by global popularity scaled below one count, so it never reorders scene counts.
class ScenePopularityRecommender final : public Recommender {
 public:
  Status Fit(const Dataset& ds, const Split& split) override {
    ADREC_RETURN_IF_ERROR(data::CheckSplitMatches(split, ds));
    const size_t n_items = ds.num_items(), n_scenes = ds.scenes.size();
    scene_counts_.assign(n_scenes * n_items, 0.f);
    std::vector<double> global(n_items, 0.0);
    double total = 0;
    user_scene_.assign(ds.num_users(), -1);
    std::vector<uint64_t> per_scene(n_scenes);
    for (uint32_t u = 0; u < ds.num_users(); ++u) {
      std::fill(per_scene.begin(), per_scene.end(), 0);
      auto [b, e] = ds.UserRange(u);
      for (uint64_t i = b; i < e; ++i) {
        if (split.part[i] != kTrain) continue;
        per_scene[ds.events.scene[i]]++;  // activity of any action decides the user's scene
        if (!split.IsPositive(ds.events.action[i])) continue;
        scene_counts_[ds.events.scene[i] * n_items + ds.events.item[i]] += 1.f;
        global[ds.events.item[i]] += 1.0;
        total += 1.0;
      }
      auto it = std::max_element(per_scene.begin(), per_scene.end());
      if (*it > 0) user_scene_[u] = static_cast<int>(it - per_scene.begin());
    }
    tiebreak_.assign(n_items, 0.f);
    for (size_t i = 0; i < n_items; ++i) tiebreak_[i] = static_cast<float>(global[i] / (total + 1.0));
    global_.assign(global.begin(), global.end());
    return Status::Ok();
  }
  void Score(uint32_t user, std::span<const uint32_t>, std::span<float> scores) const override {
    const size_t n = std::min(tiebreak_.size(), scores.size());
    int s = user < user_scene_.size() ? user_scene_[user] : -1;
    if (s < 0) {  // no train activity: fall back to global popularity
      std::copy_n(global_.begin(), n, scores.begin());
      return;
    }
    const float* row = scene_counts_.data() + static_cast<size_t>(s) * tiebreak_.size();
    for (size_t i = 0; i < n; ++i) scores[i] = row[i] + tiebreak_[i];
  }
  std::string name() const override { return "pop_scene"; }

 private:
  std::vector<float> scene_counts_;  // scene-major [scene][item]
  std::vector<float> tiebreak_, global_;
  std::vector<int> user_scene_;
};

// ---- itemknn ----
class ItemKnnRecommender final : public Recommender {
 public:
  explicit ItemKnnRecommender(ItemKnnOptions o) : o_(o) {}

  Status Fit(const Dataset& ds, const Split& split) override {
    ADREC_RETURN_IF_ERROR(data::CheckSplitMatches(split, ds));
    if (o_.neighbours == 0 || o_.max_history == 0) {
      return InvalidArgumentError("itemknn: neighbours and max_history must be >= 1");
    }
    const uint32_t n_items = ds.num_items(), n_users = ds.num_users();
    // user -> its most recent `max_history` distinct train positives (CSR).
    std::vector<uint64_t> u_off(n_users + 1, 0);
    std::vector<uint32_t> u_items;
    std::vector<uint32_t> hist;
    for (uint32_t u = 0; u < n_users; ++u) {
      hist.clear();
      auto [b, e] = ds.UserRange(u);
      for (uint64_t i = e; i-- > b && hist.size() < o_.max_history;) {
        if (!IsTrainPositive(ds, split, i)) continue;
        uint32_t it = ds.events.item[i];
        if (std::find(hist.begin(), hist.end(), it) == hist.end()) hist.push_back(it);
      }
      u_items.insert(u_items.end(), hist.begin(), hist.end());
      u_off[u + 1] = u_items.size();
    }
    // item -> users (CSR) and item degree.
    std::vector<uint64_t> i_off(n_items + 1, 0);
    for (uint32_t it : u_items) i_off[it + 1]++;
    for (uint32_t i = 0; i < n_items; ++i) i_off[i + 1] += i_off[i];
    std::vector<uint32_t> i_users(u_items.size());
    {
      std::vector<uint64_t> fill(i_off.begin(), i_off.end() - 1);
      for (uint32_t u = 0; u < n_users; ++u) {
        for (uint64_t k = u_off[u]; k < u_off[u + 1]; ++k) i_users[fill[u_items[k]]++] = u;
      }
    }
    const uint32_t N = o_.neighbours;
    // Per item first (filled in parallel), then packed into CSR: memory is the neighbours that
    // exist, at most N per item.
    std::vector<std::vector<std::pair<float, uint32_t>>> kept(n_items);
    ThreadPool pool(o_.threads);
    pool.ParallelFor(n_items, [&](size_t b, size_t e) {
      std::vector<float> co(n_items, 0.f);
      std::vector<uint32_t> touched;
      for (size_t i = b; i < e; ++i) {
        touched.clear();
        for (uint64_t k = i_off[i]; k < i_off[i + 1]; ++k) {
          uint32_t u = i_users[k];
          for (uint64_t m = u_off[u]; m < u_off[u + 1]; ++m) {
            uint32_t j = u_items[m];
            if (j == i) continue;
            if (co[j] == 0.f) touched.push_back(j);
            co[j] += 1.f;
          }
        }
        const double di = static_cast<double>(i_off[i + 1] - i_off[i]);
        std::vector<std::pair<float, uint32_t>> sims;
        sims.reserve(touched.size());
        for (uint32_t j : touched) {
          double dj = static_cast<double>(i_off[j + 1] - i_off[j]);
          sims.emplace_back(static_cast<float>(co[j] / (std::sqrt(di * dj) + o_.shrinkage)), j);
          co[j] = 0.f;
        }
        size_t keep = std::min<size_t>(N, sims.size());
        std::partial_sort(sims.begin(), sims.begin() + static_cast<ptrdiff_t>(keep), sims.end(),
                          [](const auto& a, const auto& c) { return a.first != c.first ? a.first > c.first : a.second < c.second; });
        kept[i].assign(sims.begin(), sims.begin() + static_cast<ptrdiff_t>(keep));
      }
    });
    nbr_off_.assign(n_items + 1, 0);
    nbr_item_.clear();
    nbr_sim_.clear();
    for (uint32_t i = 0; i < n_items; ++i) {
      for (const auto& [sim, j] : kept[i]) {
        nbr_sim_.push_back(sim);
        nbr_item_.push_back(j);
      }
      nbr_off_[i + 1] = nbr_item_.size();
      std::vector<std::pair<float, uint32_t>>().swap(kept[i]);
    }
    n_items_ = n_items;
    backfill_.assign(n_items, 0.f);
    if (o_.popularity_backfill) {
      // Degree / (max degree + 1) × 1e-6: below the smallest similarity step that matters.
      uint64_t max_deg = 1;
      for (uint32_t i = 0; i < n_items; ++i) max_deg = std::max(max_deg, i_off[i + 1] - i_off[i]);
      for (uint32_t i = 0; i < n_items; ++i) {
        backfill_[i] = static_cast<float>(1e-6 * static_cast<double>(i_off[i + 1] - i_off[i]) / (max_deg + 1.0));
      }
    }
    return Status::Ok();
  }

  void Score(uint32_t, std::span<const uint32_t> history, std::span<float> scores) const override {
    std::fill(scores.begin(), scores.end(), 0.f);
    std::copy_n(backfill_.begin(), std::min(backfill_.size(), scores.size()), scores.begin());
    // The most recent distinct items, as in Fit.
    std::vector<uint32_t> recent;
    for (size_t k = history.size(); k-- > 0 && recent.size() < o_.max_history;) {
      uint32_t h = history[k];
      if (h < n_items_ && std::find(recent.begin(), recent.end(), h) == recent.end()) recent.push_back(h);
    }
    for (uint32_t h : recent) {
      for (uint64_t k = nbr_off_[h]; k < nbr_off_[h + 1]; ++k) {
        if (nbr_item_[k] < scores.size()) scores[nbr_item_[k]] += nbr_sim_[k];
      }
    }
  }
  std::string name() const override { return "itemknn"; }

 private:
  ItemKnnOptions o_;
  uint32_t n_items_ = 0;
  std::vector<uint64_t> nbr_off_;  // CSR: item i's neighbours are [off[i], off[i+1])
  std::vector<uint32_t> nbr_item_;
  std::vector<float> nbr_sim_;
  std::vector<float> backfill_;  // per item, popularity scaled below any similarity
};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

nlohmann::json EvaluateCtr(const Dataset& ds, const Split& split, const BaselineEvalOptions& o) {
  nlohmann::json j;
  j["predictor"] = "pop_ctr: per-(item, scene) train CTR smoothed toward the scene's train CTR with " +
                   std::to_string(o.ctr_smoothing) + " pseudo-impressions";
  j["label_rule"] = DescribeClickLabelRule(o.clicks);
  const std::vector<int8_t> labels = ImpressionClickLabels(ds, o.clicks);
  const size_t n_items = ds.num_items(), n_scenes = ds.scenes.size();
  std::vector<double> imp(n_items * n_scenes, 0), clk(n_items * n_scenes, 0), s_imp(n_scenes, 0), s_clk(n_scenes, 0);
  double all_imp = 0, all_clk = 0;
  for (size_t i = 0; i < ds.num_events(); ++i) {
    if (labels[i] < 0 || split.part[i] != kTrain) continue;
    size_t c = ds.events.scene[i] * n_items + ds.events.item[i];
    imp[c] += 1;
    clk[c] += labels[i];
    s_imp[ds.events.scene[i]] += 1;
    s_clk[ds.events.scene[i]] += labels[i];
    all_imp += 1;
    all_clk += labels[i];
  }
  const uint8_t part = static_cast<uint8_t>(o.eval_part);
  std::vector<float> pred, y, truth;
  std::vector<uint32_t> users;
  const double global_ctr = all_imp > 0 ? all_clk / all_imp : 0.0;
  for (size_t i = 0; i < ds.num_events(); ++i) {
    if (labels[i] < 0 || split.part[i] != part) continue;
    const uint8_t s = ds.events.scene[i];
    // Scenes unseen in train fall back to the global train CTR.
    const double prior = s_imp[s] > 0 ? s_clk[s] / s_imp[s] : global_ctr;
    const size_t c = s * n_items + ds.events.item[i];
    pred.push_back(static_cast<float>((clk[c] + o.ctr_smoothing * prior) / (imp[c] + o.ctr_smoothing)));
    y.push_back(static_cast<float>(labels[i]));
    users.push_back(ds.events.user[i]);
    if (ds.has_truth()) truth.push_back(ds.events.truth[i]);
  }
  double clicks = 0;
  for (float v : y) clicks += v;
  j["train_impressions"] = static_cast<uint64_t>(all_imp);
  j["impressions"] = y.size();
  j["clicks"] = static_cast<uint64_t>(clicks);
  if (y.empty()) {
    j["skipped"] = "no impressions in the " + std::string(data::SplitPartName(o.eval_part)) + " part of split '" +
                   split.method + "' (leave-one-out holds out positives only; use a temporal or random split)";
    return j;
  }
  if (clicks == 0 || clicks == static_cast<double>(y.size())) {
    j["skipped"] = "the evaluated impressions are all of one class; AUC and NE are undefined";
    return j;
  }
  auto put = [&](const char* key, const StatusOr<double>& v) {
    if (v.ok()) j[key] = *v;
    else j[key] = nullptr;
  };
  put("auc", Auc(pred, y));
  put("logloss", LogLoss(pred, y));
  put("ne", NormalizedEntropy(pred, y));
  put("calibration", Calibration(pred, y));
  // The generator's true click probabilities on the same impressions: the ceiling any model has.
  if (!truth.empty()) {
    put("bayes_auc", Auc(truth, y));
    put("bayes_logloss", LogLoss(truth, y));
  }
  if (auto g = Gauc(pred, y, users); g.ok()) {
    j["gauc"] = g->gauc;
    j["gauc_users"] = g->users_used;
  } else {
    j["gauc"] = nullptr;
    j["gauc_users"] = 0;
  }
  return j;
}

}  // namespace

StatusOr<std::unique_ptr<Recommender>> MakeBaseline(std::string_view name, const BaselineOptions& options) {
  if (name == "random") return std::unique_ptr<Recommender>(new RandomRecommender(options.seed));
  if (name == "pop") return std::unique_ptr<Recommender>(new PopularityRecommender());
  if (name == "pop_scene") return std::unique_ptr<Recommender>(new ScenePopularityRecommender());
  if (name == "itemknn") return std::unique_ptr<Recommender>(new ItemKnnRecommender(options.itemknn));
  return InvalidArgumentError("unknown baseline '" + std::string(name) + "' (known: " + std::string(kBaselineNames) + ")");
}

std::vector<int8_t> ImpressionClickLabels(const Dataset& ds, const ClickLabelOptions& options) {
  std::vector<int8_t> label(ds.num_events(), -1);
  std::unordered_map<uint32_t, uint64_t> open;  // item -> its latest unclicked impression
  constexpr uint8_t kImp = static_cast<uint8_t>(Action::kImpression);
  for (uint32_t u = 0; u < ds.num_users(); ++u) {
    open.clear();
    auto [b, e] = ds.UserRange(u);
    for (uint64_t i = b; i < e; ++i) {
      const uint8_t a = ds.events.action[i];
      const uint32_t item = ds.events.item[i];
      if (a == kImp) {
        label[i] = 0;
        open[item] = i;  // closes the previous impression of the item
      } else if ((options.click_actions >> a) & 1u) {
        auto it = open.find(item);
        if (it == open.end()) continue;
        const uint64_t imp = it->second;
        if (options.window_s == 0 || ds.events.time[i] - ds.events.time[imp] <= options.window_s) label[imp] = 1;
        open.erase(it);
      }
    }
  }
  return label;
}

std::string DescribeClickLabelRule(const ClickLabelOptions& options) {
  std::string r = "an impression is labelled 1 when a " + data::ActionMaskNames(options.click_actions) +
                  " event on the same item by the same user follows it in the user's event order (time, then "
                  "arrival) before the next impression of that item";
  if (options.window_s > 0) r += " and within " + std::to_string(options.window_s) + " s";
  r += "; each click labels only the latest open impression of its item";
  return r;
}

bool HasImpressionsWithClicks(const Dataset& ds, const ClickLabelOptions& options) {
  bool imp = false, clk = false;
  for (uint8_t a : ds.events.action) {
    imp |= a == static_cast<uint8_t>(Action::kImpression);
    clk |= ((options.click_actions >> a) & 1u) != 0;
    if (imp && clk) return true;
  }
  return false;
}

StatusOr<nlohmann::json> EvaluateBaseline(const Dataset& ds, const Split& split, std::string_view method,
                                          const BaselineEvalOptions& options) {
  ADREC_RETURN_IF_ERROR(data::CheckSplitMatches(split, ds));
  ADREC_ASSIGN_OR_RETURN(std::unique_ptr<Recommender> model, MakeBaseline(method, options.baseline));
  nlohmann::json out;
  out["method"] = std::string(method);
  out["baseline"] = model->name();
  out["split"] = split.method;
  out["eval_part"] = std::string(data::SplitPartName(options.eval_part));

  // Queries: per user, the last positive event of the evaluated part; history = the user's
  // positive events before it, whatever their part (for leave-one-out: train + valid).
  const uint8_t part = static_cast<uint8_t>(options.eval_part);
  std::vector<uint32_t> q_users;
  std::vector<uint64_t> q_event;
  for (uint32_t u = 0; u < ds.num_users(); ++u) {
    auto [b, e] = ds.UserRange(u);
    for (uint64_t i = e; i-- > b;) {
      if (split.part[i] == part && split.IsPositive(ds.events.action[i])) {
        q_users.push_back(u);
        q_event.push_back(i);
        break;
      }
    }
  }
  if (options.max_users > 0 && q_users.size() > options.max_users) {
    // A seeded sample: the users with the smallest hashes.
    std::vector<size_t> order(q_users.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::nth_element(order.begin(), order.begin() + options.max_users, order.end(), [&](size_t a, size_t c) {
      return HashId(q_users[a], options.seed) < HashId(q_users[c], options.seed);
    });
    order.resize(options.max_users);
    std::sort(order.begin(), order.end());
    std::vector<uint32_t> nu;
    std::vector<uint64_t> ne;
    for (size_t k : order) {
      nu.push_back(q_users[k]);
      ne.push_back(q_event[k]);
    }
    q_users.swap(nu);
    q_event.swap(ne);
  }
  RankingTask task;
  task.num_items = ds.num_items();
  std::vector<uint64_t> hist_off{0};
  std::vector<uint32_t> hist_items;
  std::vector<int64_t> query_of_user(ds.num_users(), -1);
  for (size_t q = 0; q < q_users.size(); ++q) {
    const uint32_t u = q_users[q];
    const uint64_t b = ds.user_offsets[u];
    const size_t start = hist_items.size();
    for (uint64_t i = b; i < q_event[q]; ++i) {
      if (split.IsPositive(ds.events.action[i])) hist_items.push_back(ds.events.item[i]);
    }
    hist_off.push_back(hist_items.size());
    task.Add(u, ds.events.item[q_event[q]],
             std::span<const uint32_t>(hist_items.data() + start, hist_items.size() - start));
    query_of_user[u] = static_cast<int64_t>(q);
  }

  const bool ctr_data = HasImpressionsWithClicks(ds, options.clicks);
  if (task.size() == 0 && !ctr_data) {
    return FailedPreconditionError("evaluate " + std::string(method) + ": split '" + split.method + "' has no " +
                                   "positive events (" + data::ActionMaskNames(split.positive_mask) + ") in its " +
                                   std::string(data::SplitPartName(options.eval_part)) + " part");
  }

  auto t0 = std::chrono::steady_clock::now();
  ADREC_RETURN_IF_ERROR(model->Fit(ds, split));
  out["fit_seconds"] = Seconds(t0);

  std::vector<uint32_t> ks = options.hr_ks;
  ks.insert(ks.end(), options.ndcg_ks.begin(), options.ndcg_ks.end());
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  std::string protocol = "full ranking over all " + std::to_string(ds.num_items()) +
                         " items; one query per user: the last positive (" +
                         data::ActionMaskNames(split.positive_mask) + ") event of the " +
                         std::string(data::SplitPartName(options.eval_part)) + " part is the target, the user's " +
                         "positive events before it are the history" +
                         (options.exclude_seen ? " and are excluded from the ranking" : " (not excluded)") +
                         "; ties ranked " + std::string(TieRuleName(options.ties)) + "; rank is 0-based";
  out["protocol"] = protocol;
  auto t1 = std::chrono::steady_clock::now();
  if (task.size() > 0) {
    ThreadPool pool(options.threads);
    RankingOptions ro;
    ro.ks = ks;
    ro.coverage_ks = options.coverage_ks;
    ro.exclude_seen = options.exclude_seen;
    ro.ties = options.ties;
    ro.pool = &pool;
    const Recommender* m = model.get();
    auto score = [&](uint32_t user, std::span<float> scores) {
      const int64_t q = query_of_user[user];
      std::span<const uint32_t> hist(hist_items.data() + hist_off[q], hist_off[q + 1] - hist_off[q]);
      m->Score(user, hist, scores);
    };
    ADREC_ASSIGN_OR_RETURN(RankingResult r, EvaluateFullRanking(task, score, ro));
    const auto metrics = r.Metrics();
    for (uint32_t k : options.hr_ks) out["hr@" + std::to_string(k)] = metrics.at("hr@" + std::to_string(k));
    for (uint32_t k : options.ndcg_ks) out["ndcg@" + std::to_string(k)] = metrics.at("ndcg@" + std::to_string(k));
    out["mrr"] = r.mrr;
    for (size_t i = 0; i < r.coverage_ks.size(); ++i) out["coverage@" + std::to_string(r.coverage_ks[i])] = r.coverage[i];
  }
  out["users_evaluated"] = task.size();
  out["num_items"] = ds.num_items();
  out["exclude_seen"] = options.exclude_seen;
  out["ties"] = std::string(TieRuleName(options.ties));
  out["eval_seconds"] = Seconds(t1);
  if (ctr_data) out["ctr"] = EvaluateCtr(ds, split, options);
  return out;
}

}  // namespace adrec::eval
