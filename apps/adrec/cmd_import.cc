// adrec import: real logs (MovieLens, S3-Rec text, libFM, Criteo, CSV/JSONL + schema) → dataset.
#include <chrono>
#include <optional>

#include "adrec/core/file.h"
#include "adrec/data/dataset_io.h"
#include "adrec/data/import.h"
#include "adrec/data/pseudonymise.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {

void AddImportCommand(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string format, in, out, schema, libfm_field_map, pseudonymise_key;
    uint64_t max_errors = 0;
    bool force = false;
    data::LibFmOptions libfm;
    data::CriteoOptions criteo;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("import", "Import logs into a dataset directory");
  cmd->add_option("--format", flags->format, "movielens|s3rec|libfm|criteo|csv|jsonl")
      ->required()
      ->check(CLI::IsMember({"movielens", "s3rec", "libfm", "criteo", "csv", "jsonl"}));
  cmd->add_option("--in", flags->in, "Input file or directory (MovieLens: the unpacked directory)")->required();
  cmd->add_option("--out", flags->out, "Output dataset directory")->required();
  cmd->add_option("--schema", flags->schema, "Schema TOML for csv/jsonl (see configs/schemas/)");
  cmd->add_option("--max-errors", flags->max_errors, "Malformed rows tolerated before failing (0 = none)")
      ->capture_default_str();
  cmd->add_option("--libfm-user-feature", flags->libfm.user_feature,
                  "libfm: position of the user among a line's features (Frappe: 0)")->capture_default_str();
  cmd->add_option("--libfm-item-feature", flags->libfm.item_feature,
                  "libfm: position of the item among a line's features (Frappe: 1)")->capture_default_str();
  cmd->add_option("--libfm-field-map", flags->libfm_field_map,
                  "libfm: file of 'name first last' lines (the global feature indices of each field); each field "
                  "becomes a categorical event column a feature spec reads as event.<name> (scripts/libfm-field-map "
                  "writes one from the data)");
  cmd->add_option("--criteo-item-column", flags->criteo.item_column, "criteo: the C column (1..26) naming the item")
      ->capture_default_str()->check(CLI::Range(1, 26));
  cmd->add_option("--pseudonymise-users", flags->pseudonymise_key,
                  "Key file (from `adrec keygen`): user IDs are replaced by their keyed hash before anything is "
                  "written, and malformed rows are not echoed");
  cmd->add_flag("--force", flags->force, "Replace an existing output directory");
  AddJsonFlag(cmd, ctx);
  cmd->callback([flags, &ctx] {
    ctx.run = [flags, &ctx]() -> Status {
      auto t0 = std::chrono::steady_clock::now();
      std::optional<SecretKey> key;  // read first: a bad key fails before any work or output
      if (!flags->pseudonymise_key.empty()) {
        ADREC_ASSIGN_OR_RETURN(key, ReadKeyFile(flags->pseudonymise_key));
      }
      ADREC_ASSIGN_OR_RETURN(data::ImportFormat format, data::ParseImportFormat(flags->format));
      data::ImportOptions opt;
      opt.input = flags->in;
      opt.schema = flags->schema;
      opt.max_errors = flags->max_errors;
      opt.show_progress = !ctx.quiet;
      if (key) opt.max_report = 0;  // a malformed row's echo could show a raw user ID
      opt.libfm = flags->libfm;
      if (!flags->libfm_field_map.empty()) {
        if (format != data::ImportFormat::kLibFm) return InvalidArgumentError("--libfm-field-map needs --format libfm");
        ADREC_ASSIGN_OR_RETURN(std::string map, ReadFile(flags->libfm_field_map));
        ADREC_ASSIGN_OR_RETURN(opt.libfm.fields, data::ParseLibFmFieldMap(map, flags->libfm_field_map));
      }
      opt.criteo = flags->criteo;
      if ((format == data::ImportFormat::kCsv || format == data::ImportFormat::kJsonl) && flags->schema.empty()) {
        return InvalidArgumentError("--format " + flags->format + " needs --schema (examples in configs/schemas/)");
      }
      ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::Import(format, opt));
      if (key) ADREC_RETURN_IF_ERROR(data::PseudonymiseUsers(&ds, *key));
      data::WriteOptions wo;
      wo.overwrite = flags->force;
      ADREC_RETURN_IF_ERROR(data::WriteDataset(ds, flags->out, wo));
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      PrintResult(ctx, {{"out", flags->out},
                        {"format", flags->format},
                        {"users", ds.num_users()},
                        {"items", ds.num_items()},
                        {"events", ds.num_events()},
                        {"malformed_rows", ds.info.malformed_rows},
                        {"pseudonymised_users", key.has_value()},
                        {"seconds", secs}});
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
