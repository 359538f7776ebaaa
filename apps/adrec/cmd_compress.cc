// adrec compress: a ranking bundle with quantised embedding rows and pruned dense weights
// (train::CompressRanking), and what it cost in test AUC.
#include "adrec/train/trainer.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {

void AddCompressCommand(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<train::CompressOptions>();
  CLI::App* cmd = app.add_subcommand(
      "compress", "Compress a ranking bundle: row-wise int8/int4 embedding tables, magnitude-pruned dense weights");
  cmd->add_option("--bundle", o->bundle, "Ranking bundle from `adrec train`")->required();
  cmd->add_option("--out", o->out, "Compressed bundle directory")->required();
  cmd->add_option("--bits", o->bits, "Embedding rows: 8 or 4 bits (row-wise scale and minimum), 32 = keep floats")
      ->capture_default_str()
      ->check(CLI::IsMember({8, 4, 32}));
  cmd->add_option("--prune", o->prune, "Share of each dense weight matrix zeroed, smallest magnitudes first")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.99));
  cmd->add_option("--data", o->data, "Dataset: also evaluate both bundles on the test part");
  cmd->add_option("--threads", o->threads, "Threads (0 = all cores)")->capture_default_str();
  cmd->add_flag("--overwrite", o->overwrite, "Replace a bundle in --out");
  AddJsonFlag(cmd, ctx);
  cmd->callback([o, &ctx] {
    ctx.run = [o, &ctx]() -> Status {
      ADREC_ASSIGN_OR_RETURN(nlohmann::ordered_json result, train::CompressRanking(*o));
      PrintResult(ctx, result);
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
