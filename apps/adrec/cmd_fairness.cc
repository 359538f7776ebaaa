// adrec fairness: how the recommend pipeline shares exposure among advertiser groups (large and
// small, established and new) against the share of relevance their ads hold, over the answers
// it gives a seeded sample of the dataset's users (eval/fairness.h says how each is measured).
#include <algorithm>
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
};

Status RunFairness(FairnessFlags& f, const Context& ctx) {
  ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(f.rec.data));
  ADREC_ASSIGN_OR_RETURN(eval::AdvertiserStats stats, eval::AdvertiserStatsOf(ds));
  if (f.scene.empty()) f.scene = ds.scenes.front();
  if (std::find(ds.scenes.begin(), ds.scenes.end(), f.scene) == ds.scenes.end()) {
    return InvalidArgumentError("--scene '" + f.scene + "' is not a scene of " + f.rec.data.string());
  }
  // The pipeline answers from a state of its own, in a scratch directory: nothing is served.
  ScopedTempDir state("adrec-fairness");
  serve::EventStoreOptions eo;
  eo.durability = serve::Durability::kProcess;
  ADREC_ASSIGN_OR_RETURN(std::unique_ptr<serve::EventStore> store, serve::OpenEventStore((state.path() / "state").string(), eo));
  ADREC_ASSIGN_OR_RETURN(std::unique_ptr<serve::Recommender> rec, serve::Recommender::Start(f.rec, store.get()));

  std::vector<uint32_t> order(ds.num_users());
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937_64 rng(f.seed);
  std::shuffle(order.begin(), order.end(), rng);
  order.resize(std::min<size_t>(order.size(), f.users));
  uint32_t last = 0;
  for (uint32_t t : ds.events.time) last = std::max(last, t);
  std::vector<std::vector<uint32_t>> answers;
  size_t shown = 0, without_advertiser = 0;
  for (uint32_t u : order) {
    serve::RecommendRequest req;
    req.user_id = ds.users.Name(u);
    req.context = {{"scene", f.scene}, {"ts", std::to_string(last + 1)}};
    req.k = f.k;
    ADREC_ASSIGN_OR_RETURN(serve::Recommendation r, rec->Recommend(req));
    std::vector<uint32_t> answer;
    for (const serve::RecommendedItem& it : r.items) {
      const std::optional<uint32_t> item = ds.items.Find(it.item_id);
      const uint32_t a = item ? stats.advertiser_of_item[*item] : eval::kNoAdvertiser;
      if (a == eval::kNoAdvertiser) {
        ++without_advertiser;
        continue;
      }
      answer.push_back(a);
    }
    shown += answer.size();
    answers.push_back(std::move(answer));
  }
  rec->Stop();

  nlohmann::ordered_json out;
  out["requests"] = answers.size();
  out["k"] = f.k;
  out["scene"] = f.scene;
  out["ads_shown"] = shown;
  out["ads_without_advertiser"] = without_advertiser;
  out["advertisers"] = stats.names.size();
  out["relevance"] = stats.from_truth ? "the sum of each ad's mean true CTR (the world's truth)"
                                      : "the sum of each ad's smoothed CTR, (clicks + 1) / (impressions + 20)";
  for (const eval::AdvertiserGrouping& g : {eval::GroupBySize(stats.ads), eval::GroupByHistory(stats.impressions)}) {
    ADREC_ASSIGN_OR_RETURN(eval::FairnessReport r, eval::ExposureFairness(answers, g, stats.relevance));
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
  AddJsonFlag(cmd, ctx);
  cmd->callback([f, &ctx] {
    ctx.run = [f, &ctx]() -> Status { return RunFairness(*f, ctx); };
  });
}

}  // namespace adrec::cli
