// adrec fairness: how the recommend pipeline shares exposure among advertiser groups (large and
// small, established and new) against the share of relevance their ads hold, over the answers
// it gives a seeded sample of the dataset's users (eval/fairness.h says how each is measured).
#include <algorithm>
#include <charconv>
#include <numeric>
#include <random>

#include "adrec/core/file.h"
#include "adrec/core/log_line.h"
#include "adrec/data/dataset_io.h"
#include "adrec/eval/fairness.h"
#include "adrec/serve/pipeline/recommender.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {
namespace {

struct FairnessFlags {
  serve::RecommenderOptions rec;
  uint32_t users = 500;
  int k = 10;
  uint64_t seed = 1;
  std::string scene;
  std::string floor;  // GROUP:SLOTS, e.g. small:2
};

// What one run of the pipeline gave: each answer as advertisers by position, and its eCPM sum.
struct Served {
  std::vector<std::vector<uint32_t>> answers;
  size_t shown = 0, without_advertiser = 0;
  double ecpm = 0;
};

StatusOr<Served> ServeSample(const FairnessFlags& f, const serve::RecommenderOptions& ro, const data::Dataset& ds,
                             const eval::AdvertiserStats& stats, const std::vector<uint32_t>& users, uint32_t ts) {
  // The pipeline answers from a state of its own, in a scratch directory: nothing is served.
  ScopedTempDir state("adrec-fairness");
  serve::EventStoreOptions eo;
  eo.durability = serve::Durability::kProcess;
  ADREC_ASSIGN_OR_RETURN(std::unique_ptr<serve::EventStore> store, serve::OpenEventStore((state.path() / "state").string(), eo));
  ADREC_ASSIGN_OR_RETURN(std::unique_ptr<serve::Recommender> rec, serve::Recommender::Start(ro, store.get()));
  Served out;
  for (uint32_t u : users) {
    serve::RecommendRequest req;
    req.user_id = ds.users.Name(u);
    req.context = {{"scene", f.scene}, {"ts", std::to_string(ts)}};
    req.k = f.k;
    ADREC_ASSIGN_OR_RETURN(serve::Recommendation r, rec->Recommend(req));
    std::vector<uint32_t> answer;
    for (const serve::RecommendedItem& it : r.items) {
      out.ecpm += it.ecpm;
      const std::optional<uint32_t> item = ds.items.Find(it.item_id);
      const uint32_t a = item ? stats.advertiser_of_item[*item] : eval::kNoAdvertiser;
      if (a == eval::kNoAdvertiser) {
        ++out.without_advertiser;
        continue;
      }
      answer.push_back(a);
    }
    out.shown += answer.size();
    out.answers.push_back(std::move(answer));
  }
  rec->Stop();
  return out;
}

StatusOr<nlohmann::ordered_json> Report(const Served& s, const eval::AdvertiserStats& stats,
                                        const std::vector<eval::AdvertiserGrouping>& groupings) {
  nlohmann::ordered_json out;
  out["requests"] = s.answers.size();
  out["ads_shown"] = s.shown;
  out["ads_without_advertiser"] = s.without_advertiser;
  out["ecpm_sum"] = s.ecpm;
  for (const eval::AdvertiserGrouping& g : groupings) {
    ADREC_ASSIGN_OR_RETURN(eval::FairnessReport r, eval::ExposureFairness(s.answers, g, stats.relevance));
    nlohmann::ordered_json groups = nlohmann::ordered_json::array();
    for (const eval::FairnessGroup& fg : r.groups) {
      groups.push_back({{"group", fg.name},
                        {"advertisers", fg.advertisers},
                        {"exposure_share", fg.exposure_share},
                        {"relevance_share", fg.relevance_share},
                        {"exposure_over_relevance", fg.ratio}});
      LogInfo(g.name + " / " + fg.name + ": exposure " + FixedDigits(fg.exposure_share, 3) + ", relevance " +
              FixedDigits(fg.relevance_share, 3) + ", ratio " + FixedDigits(fg.ratio, 2));
    }
    out["by_" + g.name] = groups;
  }
  return out;
}

Status RunFairness(FairnessFlags& f, const Context& ctx) {
  ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(f.rec.data));
  ADREC_ASSIGN_OR_RETURN(eval::AdvertiserStats stats, eval::AdvertiserStatsOf(ds));
  if (f.scene.empty()) f.scene = ds.scenes.front();
  if (std::find(ds.scenes.begin(), ds.scenes.end(), f.scene) == ds.scenes.end()) {
    return InvalidArgumentError("--scene '" + f.scene + "' is not a scene of " + f.rec.data.string());
  }
  const std::vector<eval::AdvertiserGrouping> groupings = {eval::GroupBySize(stats.ads),
                                                            eval::GroupByHistory(stats.impressions)};
  // --floor GROUP:SLOTS: the advertisers of that group get an exposure floor in a second run.
  std::string floor_group;
  std::vector<uint32_t> floor_codes;
  std::vector<std::string> floor_names;
  int floor_slots = 0;
  if (!f.floor.empty()) {
    const size_t colon = f.floor.find(':');
    floor_group = f.floor.substr(0, colon);
    const std::string slots = colon == std::string::npos ? "" : f.floor.substr(colon + 1);
    const auto [end, ec] = std::from_chars(slots.data(), slots.data() + slots.size(), floor_slots);
    if (slots.empty() || ec != std::errc() || end != slots.data() + slots.size() || floor_slots < 1 ||
        floor_slots > f.k) {
      return InvalidArgumentError("--floor '" + f.floor + "': expected GROUP:SLOTS with 1 ≤ SLOTS ≤ --k, e.g. small:2");
    }
    bool known = false;
    for (const eval::AdvertiserGrouping& g : groupings) {
      for (size_t gi = 0; gi < g.names.size(); ++gi) {
        if (g.names[gi] != floor_group) continue;
        known = true;
        for (size_t a = 0; a < g.group_of.size(); ++a) {
          if (g.group_of[a] == static_cast<int>(gi)) {
            floor_codes.push_back(stats.codes[a]);
            floor_names.push_back(stats.names[a]);
          }
        }
      }
    }
    if (!known) {
      return InvalidArgumentError("--floor '" + f.floor + "': no group '" + floor_group +
                                  "' (large, small, established, new)");
    }
    std::sort(floor_codes.begin(), floor_codes.end());
  }

  std::vector<uint32_t> users(ds.num_users());
  std::iota(users.begin(), users.end(), 0u);
  std::mt19937_64 rng(f.seed);
  std::shuffle(users.begin(), users.end(), rng);
  users.resize(std::min<size_t>(users.size(), f.users));
  // Every request comes just after the log's last event.
  const uint32_t ts = (ds.events.time.empty() ? 0 : *std::max_element(ds.events.time.begin(), ds.events.time.end())) + 1;

  ADREC_ASSIGN_OR_RETURN(Served plain, ServeSample(f, f.rec, ds, stats, users, ts));
  ADREC_ASSIGN_OR_RETURN(nlohmann::ordered_json out, Report(plain, stats, groupings));
  out["k"] = f.k;
  out["scene"] = f.scene;
  out["advertisers"] = stats.names.size();
  out["relevance"] = stats.from_truth ? "the sum of each ad's mean true CTR (the world's truth)"
                                      : "the sum of each ad's smoothed CTR, (clicks + 1) / (impressions + 20)";
  if (floor_slots > 0) {
    serve::RecommenderOptions floored = f.rec;
    floored.rerank.floor_slots = floor_slots;
    floored.rerank.floor_advertisers = floor_codes;
    LogInfo("with an exposure floor of " + std::to_string(floor_slots) + " slots for " + floor_group);
    ADREC_ASSIGN_OR_RETURN(Served with_floor, ServeSample(f, floored, ds, stats, users, ts));
    ADREC_ASSIGN_OR_RETURN(nlohmann::ordered_json report, Report(with_floor, stats, groupings));
    report["advertisers"] = floor_names;
    report["slots"] = floor_slots;
    // What the floor costs: the answers' eCPM kept, against the run without it.
    report["ecpm_kept"] = plain.ecpm > 0 ? with_floor.ecpm / plain.ecpm : 0.0;
    out["with_floor"] = report;
  }
  PrintResult(ctx, out);
  return Status::Ok();
}

}  // namespace

void AddFairnessCommand(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<FairnessFlags>();
  CLI::App* cmd = app.add_subcommand(
      "fairness", "Exposure against relevance per advertiser group (large/small, established/new) in the answers of "
                  "the recommend pipeline to a sample of users");
  cmd->add_option("--bundle", f->rec.bundle, "Ranking bundle")->required();
  cmd->add_option("--data", f->rec.data, "The dataset the bundles were trained on")->required();
  cmd->add_option("--retrieval", f->rec.retrieval, "Two-tower bundle with an index (default: the most clicked items)");
  cmd->add_option("--users", f->users, "Users sampled (seeded)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--k", f->k, "Ads per answer")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--seed", f->seed, "Seed of the user sample")->capture_default_str();
  cmd->add_option("--scene", f->scene, "Scene of the requests (default: the dataset's first)");
  cmd->add_option("--threads", f->rec.threads, "libtorch threads of the ranker")->capture_default_str();
  cmd->add_option("--floor", f->floor,
                  "GROUP:SLOTS (e.g. small:2): run again with that many slots of each answer reserved for the group's "
                  "best ads (adrec serve --floor-advertisers), and report both");
  AddJsonFlag(cmd, ctx);
  cmd->callback([f, &ctx] {
    ctx.run = [f, &ctx]() -> Status { return RunFairness(*f, ctx); };
  });
}

}  // namespace adrec::cli
