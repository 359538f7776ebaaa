// adrec embed-text: one text per line on stdin -> one JSON array (its embedding) per line on
// stdout, with a BERT-family model directory, the all-MiniLM-L6-v2 of the project venv, or
// the built-in fallback encoder. Lines are read and written in chunks, so input can stream.
#include <chrono>
#include <cstdio>
#include <iostream>

#include <fmt/format.h>

#include "adrec/core/log_line.h"
#include "adrec/text/text_encoder.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {

void AddEmbedTextCommand(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string model;
    text::TextEncoderOptions opt;
    std::string normalize = "auto";
    size_t chunk = 4096;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "embed-text", "Embed one text per stdin line; print one JSON array per line (stats on stderr)");
  cmd->add_option("--model", flags->model,
                  "Model directory (tokenizer.json, config.json, model.safetensors); default: the venv's "
                  "all-MiniLM-L6-v2; \"hashed-ngram\": the built-in fallback encoder");
  cmd->add_option("--pool", flags->opt.pool, "mean | cls (default: the model directory's pooling config, else mean)")
      ->check(CLI::IsMember({"mean", "cls"}));
  cmd->add_option("--normalize", flags->normalize, "L2-normalise: yes | no | auto (the model's modules.json)")
      ->capture_default_str()
      ->check(CLI::IsMember({"yes", "no", "auto"}));
  cmd->add_option("--max-length", flags->opt.max_length, "Tokens per text incl. special tokens (0: the model's)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch", flags->opt.batch_size, "Texts per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--device", flags->opt.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_flag("--bf16", flags->opt.bf16, "bfloat16 weights and compute (CUDA)");
  cmd->add_option("--threads", flags->opt.threads, "Model threads (0: libtorch's default)")->capture_default_str();
  cmd->callback([flags, &ctx] {
    ctx.run = [flags, &ctx]() -> Status {
      flags->opt.normalize = flags->normalize == "auto" ? -1 : flags->normalize == "yes";
      flags->opt.show_progress = !ctx.quiet;
      ADREC_ASSIGN_OR_RETURN(std::unique_ptr<text::TextEncoder> encoder, text::OpenTextEncoder(flags->model, flags->opt));
      if (!ctx.quiet) LogInfo("embed-text: " + encoder->name() + ", dim " + std::to_string(encoder->dim()));
      const auto t0 = std::chrono::steady_clock::now();
      text::TextEncodeStats stats;
      std::vector<std::string> lines;
      std::string line, out;
      size_t line_no = 0;
      auto flush = [&]() -> Status {
        if (lines.empty()) return Status::Ok();
        auto emb = encoder->Embed(lines, &stats);
        if (!emb.ok()) {
          return Status(emb.status().code(), "stdin line " + std::to_string(line_no - lines.size() + 1) + " onwards: " +
                                                 emb.status().message());
        }
        const int64_t dim = encoder->dim();
        for (size_t i = 0; i < lines.size(); ++i) {
          out.clear();
          out.push_back('[');
          for (int64_t d = 0; d < dim; ++d) {
            if (d) out.push_back(',');
            fmt::format_to(std::back_inserter(out), "{}", (*emb)[i * dim + d]);
          }
          out += "]\n";
          std::fwrite(out.data(), 1, out.size(), stdout);
        }
        std::fflush(stdout);
        lines.clear();
        return Status::Ok();
      };
      while (std::getline(std::cin, line)) {
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(std::move(line));
        if (lines.size() >= flags->chunk) ADREC_RETURN_IF_ERROR(flush());
      }
      ADREC_RETURN_IF_ERROR(flush());
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!ctx.quiet) {
        LogInfo(fmt::format("embed-text: {} texts, {} tokens, {} truncated ({} tokens cut), {} empty, {:.1f} texts/s",
                            stats.texts, stats.tokens, stats.truncated_texts, stats.truncated_tokens, stats.empty_texts,
                            secs > 0 ? stats.texts / secs : 0.0));
      }
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
