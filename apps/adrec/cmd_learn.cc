// adrec learn: online learning from the events the server took back (docs/ONLINE.md). Reads the
// event log of --events, attributes outcomes to impressions, trains the ranking bundle on them
// and publishes snapshot bundles into --out (out/current links the newest) for the server to
// swap in; resumes from its newest snapshot.
#include "adrec/online/learner.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {

void AddLearnCommand(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<online::LearnerOptions>();
  auto policy = std::make_shared<std::string>("fake_negative");
  auto once = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "learn", "Learn online from the server's events: attribute outcomes to impressions, train the ranking bundle, "
               "publish snapshots the server swaps in");
  cmd->add_option("--bundle", o->bundle, "Ranking bundle to start from (when --out has no snapshot yet)");
  cmd->add_option("--data", o->data, "Dataset directory the bundle was trained on")->required();
  cmd->add_option("--events", o->events,
                  "The server's --state (a RocksDB directory or redis://HOST:PORT), or `dataset` to replay --data's "
                  "own events up to the end of --replay-part of --replay-split")
      ->required();
  cmd->add_option("--replay-split", o->replay_split, "With --events dataset: a split of --data (`adrec split`)");
  cmd->add_option("--replay-part", o->replay_part, "With --events dataset: the part whose end the replay reaches")
      ->capture_default_str()
      ->check(CLI::IsMember({"train", "valid", "test"}));
  cmd->add_option("--out", o->out, "Snapshot directory (snap-<n>, current -> the newest)")->required();
  cmd->add_option("--policy", *policy, "Delayed feedback: fake_negative (train at once, weighted) or window (wait for it)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fake_negative", "window"}));
  cmd->add_option("--window", o->attribution.window_s, "Attribution window, seconds")->capture_default_str();
  cmd->add_option("--lateness", o->attribution.lateness_s, "How late an event may arrive, seconds")->capture_default_str();
  cmd->add_option("--batch", o->batch_size, "Samples per step (distinct users)")->capture_default_str();
  cmd->add_option("--lr", o->lr, "Learning rate of the dense weights (Adam)")->capture_default_str();
  cmd->add_option("--embedding-lr", o->embedding_lr, "Learning rate of the embedding rows (Adagrad)")->capture_default_str();
  cmd->add_option("--embedding-accumulator", o->embedding_accumulator,
                  "Adagrad's starting accumulator for the embedding rows (0: a row's first update moves it by the full rate)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--publish-every", o->publish_every, "Trained samples between snapshots")->capture_default_str();
  cmd->add_option("--publish-seconds", o->publish_seconds, "Seconds between snapshots while learning")->capture_default_str();
  cmd->add_option("--keep", o->keep_snapshots, "Snapshots kept")->capture_default_str();
  cmd->add_option("--threads", o->threads, "libtorch threads")->capture_default_str();
  cmd->add_flag("--once", *once, "Stop at the end of the log instead of waiting for new events");
  AddJsonFlag(cmd, ctx);
  cmd->callback([o, policy, once, &ctx] {
    ctx.run = [o, policy, once, &ctx]() -> Status {
      o->attribution.policy = *policy == "window" ? online::DelayPolicy::kWindow : online::DelayPolicy::kFakeNegative;
      o->follow = !*once;
      o->stop = StopOnSignals();
      ADREC_ASSIGN_OR_RETURN(nlohmann::ordered_json report, online::RunLearner(*o));
      PrintResult(ctx, report);
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
