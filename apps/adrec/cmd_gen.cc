// adrec gen: writes the synthetic ad world (the embedded default dataset).
#include <chrono>
#include <optional>

#include "adrec/data/dataset_io.h"
#include "adrec/data/pseudonymise.h"
#include "adrec/data/synthetic.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {

void AddGenCommand(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string out, pseudonymise_key;
    data::SyntheticOptions opt;
    bool force = false;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("gen", "Generate the synthetic ad world into a dataset directory");
  cmd->add_option("--out", flags->out, "Output dataset directory")->required();
  cmd->add_option("--users", flags->opt.users, "Users")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--ads", flags->opt.ads, "Ads")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--advertisers", flags->opt.advertisers, "Advertisers")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--days", flags->opt.days, "Days of logs")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--scenes", flags->opt.scenes, "Scenes (feed, search, splash, app_store, ...)")->capture_default_str();
  cmd->add_option("--seed", flags->opt.seed, "Random seed; the same seed gives the same world")->capture_default_str();
  cmd->add_option("--impressions-per-day", flags->opt.impressions_per_user_day, "Mean impressions per user and day")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--signal-scale", flags->opt.signal_scale,
                  "Multiplies every learnable term of the click model (0: only scene and position)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--pseudonymise-users", flags->pseudonymise_key,
                  "Key file (`adrec keygen`): user IDs become their keyed hash, as `adrec import` makes them");
  cmd->add_flag("--force", flags->force, "Replace an existing output directory");
  AddJsonFlag(cmd, ctx);
  cmd->callback([flags, &ctx] {
    ctx.run = [flags, &ctx]() -> Status {
      auto t0 = std::chrono::steady_clock::now();
      flags->opt.show_progress = !ctx.quiet;
      std::optional<SecretKey> key;
      if (!flags->pseudonymise_key.empty()) {
        ADREC_ASSIGN_OR_RETURN(key, ReadKeyFile(flags->pseudonymise_key));
      }
      ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::GenerateSyntheticWorld(flags->opt));
      if (key) ADREC_RETURN_IF_ERROR(data::PseudonymiseUsers(&ds, *key));
      data::WriteOptions wo;
      wo.overwrite = flags->force;
      ADREC_RETURN_IF_ERROR(data::WriteDataset(ds, flags->out, wo));
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      PrintResult(ctx, {{"out", flags->out},
                        {"users", ds.num_users()},
                        {"items", ds.num_items()},
                        {"events", ds.num_events()},
                        {"seed", flags->opt.seed},
                        {"seconds", secs}});
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
