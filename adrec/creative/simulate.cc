#include "adrec/creative/simulate.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <unordered_map>

#include "adrec/data/synthetic.h"

namespace adrec::creative {
namespace {

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double Logit(double p) {
  p = std::clamp(p, 1e-6, 1 - 1e-6);
  return std::log(p / (1 - p));
}

// The generator's signal_scale, from the provenance `adrec gen` writes (1 when absent).
double SignalScale(const data::Dataset& ds) {
  const std::string key = "signal_scale=";
  const size_t at = ds.info.provenance.find(key);
  return at == std::string::npos ? 1.0 : std::atof(ds.info.provenance.c_str() + at + key.size());
}

}  // namespace

StatusOr<SimulateReport> Simulate(const data::Dataset& world, const std::vector<CreativeVariant>& variants,
                                  const SimulateOptions& o) {
  if (world.events.truth.empty()) {
    return FailedPreconditionError("the world has no ground-truth click probabilities: simulate needs a synthetic world "
                                   "(adrec gen)");
  }
  if (o.days == 0 || o.impressions_per_day == 0 || o.ads == 0) {
    return InvalidArgumentError("days, impressions per day and ads must be positive");
  }
  const bool oracle_static = o.policy == "static";
  ADREC_ASSIGN_OR_RETURN(ContextEncoder encoder, ContextEncoder::Create(world, o.context));
  if (!o.user_embedding.empty()) {
    ADREC_ASSIGN_OR_RETURN(auto vectors, BundleUserVectors(o.user_embedding, world));
    ADREC_RETURN_IF_ERROR(encoder.SetUserVectors(std::move(vectors.first), vectors.second));
  }
  std::unique_ptr<CreativePolicy> policy;
  if (!oracle_static) {
    BanditOptions b = o.bandit;
    b.dim = encoder.dim();
    ADREC_ASSIGN_OR_RETURN(policy, MakeCreativePolicy(o.policy, b));
  }
  // The ads' mean true CTR under the logging policy: the ranker-like prior and the base of the truth.
  const size_t n_items = world.items.size();
  std::vector<double> truth_sum(n_items, 0.0);
  std::vector<uint64_t> shown(n_items, 0);
  for (size_t e = 0; e < world.events.size(); ++e) {
    if (world.events.action[e] != static_cast<uint8_t>(data::Action::kImpression)) continue;
    truth_sum[world.events.item[e]] += world.events.truth[e];
    ++shown[world.events.item[e]];
  }
  std::vector<std::vector<uint32_t>> of_ad(n_items);
  for (uint32_t v = 0; v < variants.size(); ++v) {
    auto ad = world.items.Find(variants[v].ad_id);
    if (!ad) return InvalidArgumentError("variant '" + variants[v].id + "' names ad '" + variants[v].ad_id + "', which the world does not have");
    of_ad[*ad].push_back(v);
  }
  std::vector<uint32_t> ads;
  for (uint32_t a = 0; a < n_items; ++a) {
    if (of_ad[a].size() >= 2 && shown[a] > 0) ads.push_back(a);
  }
  std::stable_sort(ads.begin(), ads.end(), [&](uint32_t a, uint32_t b) { return shown[a] > shown[b]; });
  if (ads.size() > o.ads) ads.resize(o.ads);
  if (ads.empty()) return InvalidArgumentError("no ad of the world has two variants or more: nothing to choose between");

  // Viewers: each user's (age, gender, device) with every scene.
  const uint32_t n_users = world.users.size(), n_scenes = static_cast<uint32_t>(world.scenes.size());
  std::vector<data::SyntheticViewer> viewer(static_cast<size_t>(n_users) * n_scenes);
  for (uint32_t u = 0; u < n_users; ++u) {
    for (uint32_t s = 0; s < n_scenes; ++s) {
      ADREC_ASSIGN_OR_RETURN(viewer[u * n_scenes + s],
                             data::SyntheticViewerOf(CellText(world.user_table, data::cols::kAge, u), CellText(world.user_table, data::cols::kGender, u),
                                                     CellText(world.user_table, data::cols::kDevice, u), world.scenes[s]));
    }
  }
  const double scale = SignalScale(world);
  const data::Column* text_type = world.item_table.Find(data::cols::kTextType);
  std::unordered_map<uint32_t, data::SyntheticCreativeTraits> traits;
  std::vector<double> base(n_items, 0.0);
  for (uint32_t a : ads) {
    const std::string fallback = text_type && text_type->vocab ? text_type->vocab->Name(text_type->u32[a]) : "benefit";
    for (uint32_t v : of_ad[a]) {
      const CreativeVariant& cv = variants[v];
      auto t = data::SyntheticCreativeTraitsOf(cv.title, cv.colour, cv.orientation, fallback);
      if (!t.ok()) return InvalidArgumentError("variant '" + cv.id + "': " + std::string(t.status().message()));
      traits[v] = *t;
    }
    // The ad's mean CTR belongs to its first (catalogue) creative: its creative term averaged
    // over the viewers comes out of the base.
    double mean_term = 0;
    for (const data::SyntheticViewer& vw : viewer) mean_term += data::SyntheticCreativeLogit(traits[of_ad[a].front()], vw);
    base[a] = Logit(truth_sum[a] / static_cast<double>(shown[a])) - scale * mean_term / static_cast<double>(viewer.size());
  }
  auto true_ctr = [&](uint32_t a, uint32_t v, const data::SyntheticViewer& vw) {
    return Sigmoid(base[a] + scale * data::SyntheticCreativeLogit(traits[v], vw));
  };
  std::vector<uint32_t> best_static(n_items, 0);
  if (oracle_static) {
    for (uint32_t a : ads) {
      double best = -1;
      for (uint32_t v : of_ad[a]) {
        double mean = 0;
        for (const data::SyntheticViewer& vw : viewer) mean += true_ctr(a, v, vw);
        if (mean > best) best = mean, best_static[a] = v;
      }
    }
  }

  SimulateReport r;
  r.policy = o.policy;
  r.ads = ads.size();
  for (uint32_t a : ads) r.variants += of_ad[a].size();
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> unit(0, 1);
  double oracle_sum = 0, expected_sum = 0;
  for (uint32_t day = 0; day < o.days; ++day) {
    SimulateDay d;
    d.day = day;
    double expected = 0;
    for (uint32_t i = 0; i < o.impressions_per_day; ++i) {
      const uint32_t user = static_cast<uint32_t>(rng() % n_users), scene = static_cast<uint32_t>(rng() % n_scenes);
      const uint32_t a = ads[rng() % ads.size()];
      const data::SyntheticViewer& vw = viewer[user * n_scenes + scene];
      const BanditContext ctx = encoder.Encode(user, static_cast<uint8_t>(scene));
      const double prior = truth_sum[a] / static_cast<double>(shown[a]);
      const uint32_t shown_v = oracle_static ? best_static[a] : policy->Choose(of_ad[a], ctx, prior);
      double best = 0;
      for (uint32_t v : of_ad[a]) best = std::max(best, true_ctr(a, v, vw));
      const double p = true_ctr(a, shown_v, vw);
      const bool click = unit(rng) < p;
      if (policy) policy->Update(shown_v, ctx, click ? 1.0 : 0.0);
      ++d.impressions;
      d.clicks += click;
      d.regret += best - p;
      expected += p;
      oracle_sum += best;
    }
    expected_sum += expected;
    r.impressions += d.impressions;
    r.clicks += d.clicks;
    r.cumulative_regret += d.regret;
    d.cumulative_regret = r.cumulative_regret;
    d.ctr = static_cast<double>(d.clicks) / static_cast<double>(d.impressions);
    d.expected_ctr = expected / static_cast<double>(d.impressions);
    r.days.push_back(d);
  }
  r.ctr = static_cast<double>(r.clicks) / static_cast<double>(r.impressions);
  r.expected_ctr = expected_sum / static_cast<double>(r.impressions);
  r.oracle_ctr = oracle_sum / static_cast<double>(r.impressions);
  return r;
}

}  // namespace adrec::creative
