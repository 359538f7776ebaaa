// Shared plumbing of the sub-commands: flags every command has, JSON/text output, exit codes.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <string>

#include "adrec/core/status.h"

namespace adrec::cli {

struct Context {
  bool json = false;      // one JSON object on stdout, logs on stderr
  bool quiet = false;     // no progress output
  std::string log_level = "info";
  std::string at_rest_key;  // key file: every file adrec writes is encrypted with it, and read back
  std::function<Status()> run;  // set by the chosen sub-command's callback
};

// Adds --json to a sub-command.
void AddJsonFlag(CLI::App* cmd, Context& ctx);
// Writes `obj` to stdout: as one JSON line with --json, else as readable "key: value" lines.
void PrintResult(const Context& ctx, const nlohmann::ordered_json& obj);
// Makes the first SIGINT/SIGTERM set the returned flag (a long command then saves what it has and
// stops); the default action comes back for a second one, so an impatient user can still kill.
const std::atomic<bool>* StopOnSignals();

// Registration functions, one per cmd_*.cc file.
void AddGenCommand(CLI::App& app, Context& ctx);
void AddImportCommand(CLI::App& app, Context& ctx);
void AddStatsCommand(CLI::App& app, Context& ctx);
void AddSplitCommand(CLI::App& app, Context& ctx);
void AddEvalBaselineCommand(CLI::App& app, Context& ctx);
void AddTrainCommand(CLI::App& app, Context& ctx);
void AddEvalCommand(CLI::App& app, Context& ctx);
void AddFeaturesCommand(CLI::App& app, Context& ctx);
void AddEmbedTextCommand(CLI::App& app, Context& ctx);
void AddEmbedCommand(CLI::App& app, Context& ctx);
void AddTagCommand(CLI::App& app, Context& ctx);
void AddCreativesCommand(CLI::App& app, Context& ctx);
void AddSimulateCommand(CLI::App& app, Context& ctx);
void AddIndexCommand(CLI::App& app, Context& ctx);  // builds with FAISS only (ADREC_HAVE_FAISS)
void AddServeCommand(CLI::App& app, Context& ctx);  // builds with the server only (ADREC_HAVE_SERVER)
void AddFairnessCommand(CLI::App& app, Context& ctx);  // runs the recommend pipeline (ADREC_HAVE_SERVER)
void AddLearnCommand(CLI::App& app, Context& ctx);  // builds with the event store only (ADREC_HAVE_ONLINE)
void AddDpEpsilonCommand(CLI::App& app, Context& ctx);
void AddKeygenCommand(CLI::App& app, Context& ctx);
void AddExplainCommand(CLI::App& app, Context& ctx);
void AddCompressCommand(CLI::App& app, Context& ctx);

}  // namespace adrec::cli
