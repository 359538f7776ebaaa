// adrec: the command-line tool. Each sub-command lives in its own cmd_*.cc file.
#include <iostream>

#include "adrec/core/crypto.h"
#include "adrec/core/log.h"
#include "apps/adrec/cli.h"

int main(int argc, char** argv) {
  adrec::cli::Context ctx;
  CLI::App app{"adrec: an ad recommendation engine (data, models, serving)", "adrec"};
  app.set_version_flag("--version", std::string("adrec ") + ADREC_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // --quiet and --log-level work after the sub-command too
  app.add_option("--log-level", ctx.log_level, "trace|debug|info|warn|error|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_flag("-q,--quiet", ctx.quiet, "No progress output");
  app.add_option("--at-rest-key", ctx.at_rest_key,
                 "Key file (`adrec keygen`): datasets, bundles, checkpoints and indexes are written encrypted "
                 "(XChaCha20-Poly1305) and read back with it")
      ->envname("ADREC_AT_REST_KEY_FILE");
  adrec::cli::AddGenCommand(app, ctx);
  adrec::cli::AddImportCommand(app, ctx);
  adrec::cli::AddStatsCommand(app, ctx);
  adrec::cli::AddSplitCommand(app, ctx);
  adrec::cli::AddEvalBaselineCommand(app, ctx);
  adrec::cli::AddTrainCommand(app, ctx);
  adrec::cli::AddEvalCommand(app, ctx);
  adrec::cli::AddFeaturesCommand(app, ctx);
  adrec::cli::AddEmbedTextCommand(app, ctx);
  adrec::cli::AddEmbedCommand(app, ctx);
  adrec::cli::AddTagCommand(app, ctx);
  adrec::cli::AddCreativesCommand(app, ctx);
  adrec::cli::AddSimulateCommand(app, ctx);
  adrec::cli::AddDpEpsilonCommand(app, ctx);
  adrec::cli::AddKeygenCommand(app, ctx);
  adrec::cli::AddExplainCommand(app, ctx);
  adrec::cli::AddCompressCommand(app, ctx);
#ifdef ADREC_HAVE_FAISS
  adrec::cli::AddIndexCommand(app, ctx);
#endif
#ifdef ADREC_HAVE_SERVER
  adrec::cli::AddServeCommand(app, ctx);
  adrec::cli::AddFairnessCommand(app, ctx);
#endif
#ifdef ADREC_HAVE_ONLINE
  adrec::cli::AddLearnCommand(app, ctx);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);  // --help exits 0, a usage error 1..
  }
  adrec::InitLogging(ctx.log_level);
  if (!ctx.run) return 2;
  adrec::Status s = adrec::Status::Ok();
  if (!ctx.at_rest_key.empty()) {  // before any file is touched, and before other threads start
    adrec::StatusOr<adrec::SecretKey> key = adrec::ReadKeyFile(ctx.at_rest_key);
    if (key.ok()) {
      adrec::SetAtRestKey(*key);
    } else {
      s = key.status().WithContext("--at-rest-key");
    }
  }
  if (s.ok()) s = ctx.run();
  if (!s.ok()) {
    if (ctx.json) {
      nlohmann::json err = {{"error", {{"code", std::string(adrec::StatusCodeName(s.code()))}, {"message", s.message()}}}};
      std::cout << err.dump() << std::endl;
    }
    spdlog::error("{}", s.ToString());
    return s.code() == adrec::StatusCode::kCancelled ? 130 : 1;  // 130: stopped by SIGINT, as shells report
  }
  return 0;
}
