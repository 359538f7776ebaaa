// adrec stats: what a dataset holds (counts, actions, scenes, CTR, sequence lengths, time).
#include "adrec/data/dataset_io.h"
#include "adrec/data/stats.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {

void AddStatsCommand(CLI::App& app, Context& ctx) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("stats", "Print a dataset's statistics");
  cmd->add_option("dataset", *dir, "Dataset directory")->required();
  AddJsonFlag(cmd, ctx);
  cmd->callback([dir, &ctx] {
    ctx.run = [dir, &ctx]() -> Status {
      ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(*dir));
      PrintResult(ctx, data::ComputeStats(ds));
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
