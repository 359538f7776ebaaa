// adrec split: assigns every event of a dataset to train / valid / test and stores that.
#include "adrec/data/dataset_io.h"
#include "adrec/data/split.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {

void AddSplitCommand(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string dataset, out;
    data::SplitOptions opt;
    std::vector<std::string> positives;
    bool force = false;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("split", "Split a dataset into train/valid/test");
  cmd->add_option("dataset", flags->dataset, "Dataset directory")->required();
  cmd->add_option("--method", flags->opt.method,
                  "loo (leave-one-out by user), temporal (global time cut), random (by user), random_event")
      ->capture_default_str()
      ->check(CLI::IsMember({"loo", "temporal", "random", "random_event"}));
  cmd->add_option("--out", flags->out, "Output split directory")->required();
  cmd->add_option("--seed", flags->opt.seed, "Seed of the random methods")->capture_default_str();
  cmd->add_option("--train", flags->opt.train_fraction, "Train fraction (temporal, random)")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--valid", flags->opt.valid_fraction, "Valid fraction (temporal, random)")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--positive-actions", flags->positives,
                  "Actions that count as positives (default: every non-impression action), e.g. click")
      ->delimiter(',');
  cmd->add_flag("--force", flags->force, "Replace an existing output directory");
  AddJsonFlag(cmd, ctx);
  cmd->callback([flags, &ctx] {
    ctx.run = [flags, &ctx]() -> Status {
      ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(flags->dataset));
      flags->opt.positive_actions.clear();
      for (const std::string& p : flags->positives) {
        ADREC_ASSIGN_OR_RETURN(data::Action a, data::ParseAction(p));
        flags->opt.positive_actions.push_back(a);
      }
      ADREC_ASSIGN_OR_RETURN(data::Split split, data::MakeSplit(ds, flags->opt));
      data::WriteSplitOptions wo;
      wo.overwrite = flags->force;
      ADREC_RETURN_IF_ERROR(data::WriteSplit(split, flags->out, wo));
      auto counts = split.Counts();
      PrintResult(ctx, {{"out", flags->out},
                        {"method", split.method},
                        {"positives", data::ActionMaskNames(split.positive_mask)},
                        {"train", counts[0]},
                        {"valid", counts[1]},
                        {"test", counts[2]}});
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
