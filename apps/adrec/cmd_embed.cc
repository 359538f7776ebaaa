// adrec embed: language-model features of a dataset. Item texts or user behaviour prompts are
// embedded, reduced by PCA fitted on the training part, and stored as a sparse_vector column
// (a `text` field of any feature spec); the PCA goes to OUT/text/ for serving.
#include <chrono>
#include <filesystem>

#include "adrec/core/file.h"
#include "adrec/core/log_line.h"
#include "adrec/data/dataset_io.h"
#include "adrec/data/split.h"
#include "adrec/text/text_cache.h"
#include "adrec/text/text_features.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {

namespace fs = std::filesystem;

void AddEmbedCommand(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string data, out, split, prompt, model, cache;
    bool force = false, no_cache = false;
    text::TextColumnOptions column;
    text::TextEncoderOptions encoder;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("embed", "Add language-model embeddings of items or users to a dataset");
  cmd->add_option("--data", f->data, "Dataset directory")->required();
  cmd->add_option("--what", f->column.what, "items (title, description, taxonomy, tags) | users (behaviour prompts)")
      ->required()
      ->check(CLI::IsMember({"items", "users"}));
  cmd->add_option("--model", f->model, "Text model directory; default the venv's all-MiniLM-L6-v2; hashed-ngram: the fallback");
  cmd->add_option("--dim", f->column.dim, "PCA components (0: keep the model's dimension)")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--column", f->column.column, "Column to add or replace")->capture_default_str();
  cmd->add_option("--split", f->split, "Split directory: PCA on train rows, prompts from train events only");
  cmd->add_option("--prompt", f->prompt, "Prompt template for users (configs/prompts/NAME.toml)");
  cmd->add_option("--out", f->out, "Output dataset directory (default: rewrite --data in place)");
  cmd->add_flag("--force", f->force, "Replace an existing --out directory");
  cmd->add_option("--cache", f->cache,
                  "Text-embedding cache (RocksDB, keyed by model and text); default $ADREC_CACHE_DIR/text-embeddings "
                  "or ~/.cache/adrec/text-embeddings");
  cmd->add_flag("--no-cache", f->no_cache, "Embed every text, reading and writing no cache");
  cmd->add_option("--device", f->encoder.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--batch", f->encoder.batch_size, "Texts per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--threads", f->encoder.threads, "Model threads (0: libtorch's default)")->capture_default_str();
  AddJsonFlag(cmd, ctx);
  cmd->callback([f, &ctx] {
    ctx.run = [f, &ctx]() -> Status {
      const auto t0 = std::chrono::steady_clock::now();
      const fs::path out = f->out.empty() ? fs::path(f->data) : fs::path(f->out);
      const bool in_place = f->out.empty() || fs::weakly_canonical(out) == fs::weakly_canonical(f->data);
      if (in_place) ADREC_RETURN_IF_ERROR(data::CheckDatasetRewritable(f->data));
      ADREC_ASSIGN_OR_RETURN(auto kept, text::ReadTextSideFiles(f->data));
      ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(f->data));
      std::optional<data::Split> split;
      if (!f->split.empty()) {
        ADREC_ASSIGN_OR_RETURN(split, data::ReadSplit(f->split, ds));
      }
      std::vector<std::string> texts;
      if (f->column.what == "items") {
        texts = text::ItemTexts(ds);
      } else {
        text::PromptTemplate prompt;
        if (!f->prompt.empty()) {
          ADREC_ASSIGN_OR_RETURN(prompt, text::ReadPromptTemplate(f->prompt));
        }
        if (!split) LogWarn("embed --what users without --split: prompts use every event, so valid/test behaviour leaks into the feature");
        texts = text::UserPrompts(ds, split ? &*split : nullptr, prompt);
      }
      f->encoder.show_progress = !ctx.quiet;
      ADREC_ASSIGN_OR_RETURN(std::unique_ptr<text::TextEncoder> encoder, text::OpenTextEncoder(f->model, f->encoder));
      ADREC_ASSIGN_OR_RETURN(encoder, text::WithTextCache(std::move(encoder), f->cache, f->no_cache));
      const auto* cached = dynamic_cast<const text::CachingTextEncoder*>(encoder.get());
      if (!ctx.quiet) LogInfo("embed: " + std::to_string(texts.size()) + " " + f->column.what + " with " + encoder->name());
      ADREC_ASSIGN_OR_RETURN(text::TextColumnReport r,
                             text::AddTextColumn(&ds, split ? &*split : nullptr, *encoder, texts, f->column));
      data::WriteOptions wo;
      wo.overwrite = in_place || f->force;
      ADREC_RETURN_IF_ERROR(data::WriteDataset(ds, out, wo));
      ADREC_RETURN_IF_ERROR(text::WriteTextSideFiles(out, kept, f->column, r));
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      PrintResult(ctx, {{"out", out.string()},
                        {"what", f->column.what},
                        {"column", r.column},
                        {"encoder", r.encoder},
                        {"rows", r.rows},
                        {"empty_rows", r.empty_rows},
                        {"pca_fit_rows", r.fit_rows},
                        {"encoder_dim", r.encoder_dim},
                        {"dim", r.dim},
                        {"explained_variance", r.explained_variance},
                        {"tokens", r.stats.tokens},
                        {"truncated_texts", r.stats.truncated_texts},
                        {"cache", cached ? nlohmann::ordered_json{{"dir", cached->cache_dir().string()},
                                                                  {"hits", cached->cache_stats().hits},
                                                                  {"misses", cached->cache_stats().misses}}
                                         : nlohmann::ordered_json()},
                        {"seconds", secs}});
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
