// adrec eval-baseline: scores a baseline (random, popularity, item-kNN) on a split.
#include "adrec/data/dataset_io.h"
#include "adrec/data/split.h"
#include "adrec/eval/baselines.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {

void AddEvalBaselineCommand(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string dataset, split_dir, method = "pop", part = "test";
    eval::BaselineEvalOptions opt;
    data::SplitOptions split;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "eval-baseline", "Evaluate a baseline with full ranking over all items (and pop-CTR on impression logs)");
  cmd->add_option("dataset", flags->dataset, "Dataset directory")->required();
  cmd->add_option("--method", flags->method, "random|pop|pop_scene|itemknn")->capture_default_str()->required();
  cmd->add_option("--split", flags->split_dir, "Split directory from `adrec split`; default: leave-one-out made now");
  cmd->add_option("--split-method", flags->split.method, "Split made when --split is absent")
      ->capture_default_str()
      ->check(CLI::IsMember({"loo", "temporal", "random", "random_event"}));
  cmd->add_option("--part", flags->part, "Part evaluated: test or valid")
      ->capture_default_str()
      ->check(CLI::IsMember({"test", "valid"}));
  cmd->add_option("--exclude-seen", flags->opt.exclude_seen,
                  "Remove items of the user's history from its ranking (true|false)")
      ->capture_default_str();
  cmd->add_option("--max-users", flags->opt.max_users, "Evaluate a seeded sample of users (0 = all)")
      ->capture_default_str();
  cmd->add_option("--threads", flags->opt.threads, "Threads (0 = all cores)")->capture_default_str();
  AddJsonFlag(cmd, ctx);
  cmd->callback([flags, &ctx] {
    ctx.run = [flags, &ctx]() -> Status {
      ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(flags->dataset));
      data::Split split;
      if (flags->split_dir.empty()) {
        ADREC_ASSIGN_OR_RETURN(split, data::MakeSplit(ds, flags->split));
      } else {
        ADREC_ASSIGN_OR_RETURN(split, data::ReadSplit(flags->split_dir, ds));
      }
      flags->opt.eval_part = flags->part == "valid" ? data::SplitPart::kValid : data::SplitPart::kTest;
      ADREC_ASSIGN_OR_RETURN(nlohmann::json result, eval::EvaluateBaseline(ds, split, flags->method, flags->opt));
      PrintResult(ctx, result);
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
