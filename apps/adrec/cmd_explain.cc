// adrec explain: why a ranking bundle scores samples as it does — integrated gradients of the
// target's logit over each input group (train::ExplainRanking).
#include "adrec/train/trainer.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {

void AddExplainCommand(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<train::ExplainOptions>();
  CLI::App* cmd = app.add_subcommand(
      "explain", "Explain a ranking bundle's scores: integrated gradients per feature (field) for samples of a part");
  cmd->add_option("--data", o->data, "Dataset directory")->required();
  cmd->add_option("--bundle", o->bundle, "Ranking bundle from `adrec train`")->required();
  cmd->add_option("--split", o->part, "Part the samples come from: test, valid, train or all")
      ->capture_default_str()
      ->check(CLI::IsMember({"test", "valid", "train", "all"}));
  cmd->add_option("--split-dir", o->split_dir, "Split directory (default: the split recorded in the bundle)");
  cmd->add_option("--events", o->events, "Explain the samples of these events (dataset event indices, comma-separated)")
      ->delimiter(',');
  cmd->add_option("--limit", o->limit, "Without --events: this many samples, a seeded choice")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of that choice")->capture_default_str();
  cmd->add_option("--target", o->target, "Target whose score is explained (default: the bundle's primary target)");
  cmd->add_option("--steps", o->steps, "Points of the integrated-gradients path")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--top", o->top, "Reasons listed per sample")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads (0 = all cores)")->capture_default_str();
  AddJsonFlag(cmd, ctx);
  cmd->callback([o, &ctx] {
    ctx.run = [o, &ctx]() -> Status {
      ADREC_ASSIGN_OR_RETURN(nlohmann::ordered_json result, train::ExplainRanking(*o));
      PrintResult(ctx, result);
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
