// adrec creatives: variants of the catalogue's ads from templates and a phrase book, filtered
// (length, banned words, unsupported claims), written as JSON lines with IDs and provenance.
// adrec simulate: the closed creative loop against a synthetic world (docs/CREATIVES.md).
#include <sstream>

#include "adrec/core/file.h"
#include "adrec/creative/decoder_variants.h"
#include "adrec/creative/simulate.h"
#include "adrec/creative/variants.h"
#include "adrec/data/dataset_io.h"
#include "adrec/text/decoder_train.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {
namespace {

struct VariantFlags {
  std::string phrases = "synthetic";
  std::string banned;
  creative::TemplateOptions templates;
};

void AddVariantFlags(CLI::App* cmd, VariantFlags* f) {
  cmd->add_option("--phrases", f->phrases,
                  "Phrase book: a file of '<lang>\\t<phrase>' lines, or `synthetic` (the synthetic world's hook phrases)")
      ->capture_default_str();
  cmd->add_option("--banned", f->banned, "Banned words, one a line (default: the built-in list)");
  cmd->add_option("--per-ad", f->templates.per_ad, "Variants per ad, the catalogue's own included")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--max-chars", f->templates.filter.max_chars, "Longest text, in characters")->capture_default_str();
  cmd->add_option("--variant-seed", f->templates.seed, "Seed of the phrase and template draws")->capture_default_str();
}

StatusOr<std::vector<creative::CreativeVariant>> MakeVariants(const data::Dataset& ds, VariantFlags f,
                                                              creative::GenerateReport* report) {
  std::vector<creative::Phrase> phrases;
  if (f.phrases == "synthetic") {
    phrases = creative::SyntheticPhraseBook();
  } else {
    ADREC_ASSIGN_OR_RETURN(phrases, creative::ReadPhraseBook(f.phrases));
  }
  if (!f.banned.empty()) {
    ADREC_ASSIGN_OR_RETURN(std::string text, ReadFile(f.banned));
    std::istringstream in(text);
    for (std::string w; std::getline(in, w);) {
      if (!w.empty() && w[0] != '#') f.templates.filter.banned_words.push_back(w);
    }
    if (f.templates.filter.banned_words.empty()) return InvalidArgumentError(f.banned + ": no banned word in it");
  }
  return creative::GenerateTemplateVariants(ds, phrases, f.templates, report);
}

nlohmann::ordered_json ReportJson(const creative::SimulateReport& r) {
  nlohmann::ordered_json days = nlohmann::ordered_json::array();
  for (const creative::SimulateDay& d : r.days) {
    days.push_back({{"day", d.day}, {"impressions", d.impressions}, {"clicks", d.clicks}, {"ctr", d.ctr},
                    {"expected_ctr", d.expected_ctr}, {"regret", d.regret}, {"cumulative_regret", d.cumulative_regret}});
  }
  return {{"policy", r.policy},         {"ads", r.ads},         {"variants", r.variants},
          {"impressions", r.impressions}, {"clicks", r.clicks}, {"ctr", r.ctr},
          {"expected_ctr", r.expected_ctr}, {"oracle_ctr", r.oracle_ctr}, {"cumulative_regret", r.cumulative_regret},
          {"days", days}};
}

}  // namespace

void AddCreativesCommand(CLI::App& app, Context& ctx) {
  auto data = std::make_shared<std::string>(), out = std::make_shared<std::string>();
  auto flags = std::make_shared<VariantFlags>();
  auto train_decoder = std::make_shared<std::string>(), decoder = std::make_shared<std::string>();
  auto dec_train = std::make_shared<text::DecoderTrainOptions>();
  auto dec = std::make_shared<creative::DecoderVariantOptions>();
  CLI::App* cmd = app.add_subcommand(
      "creatives", "Write creative variants of every ad: templates over catalogue fields and a phrase book, filtered");
  cmd->add_option("--data", *data, "Dataset directory (the catalogue)")->required();
  cmd->add_option("--out", *out, "Variants file (JSON lines)")->required();
  cmd->add_option("--train-decoder", *train_decoder,
                  "First train a small Llama-shaped decoder on the catalogue's titles and save it here (a Hugging Face "
                  "directory); its variants join the templates'");
  cmd->add_option("--decoder-steps", dec_train->steps, "Training steps of --train-decoder")->capture_default_str();
  cmd->add_option("--decoder", *decoder, "A decoder directory (Llama/Qwen2 with tokenizer.json) whose variants join the templates'");
  cmd->add_option("--decoder-per-ad", dec->per_ad, "Decoder variants per ad at most")->capture_default_str();
  cmd->add_option("--threads", dec_train->threads, "libtorch threads (0 = all cores)")->capture_default_str();
  AddVariantFlags(cmd, flags.get());
  AddJsonFlag(cmd, ctx);
  cmd->callback([=, &ctx] {
    ctx.run = [=, &ctx]() -> Status {
      ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(*data));
      creative::GenerateReport rep;
      ADREC_ASSIGN_OR_RETURN(std::vector<creative::CreativeVariant> v, MakeVariants(ds, *flags, &rep));
      nlohmann::ordered_json result = {{"ads", rep.ads}, {"variants", rep.variants}, {"rejected", rep.rejected},
                                       {"rejections", rep.rejections}};
      std::string model = *decoder;
      if (!train_decoder->empty()) {
        dec_train->seed = flags->templates.seed;
        dec_train->show_progress = !ctx.quiet;
        dec_train->stop = StopOnSignals();
        ADREC_ASSIGN_OR_RETURN(result["decoder_training"],
                               text::TrainByteDecoder(creative::DecoderCorpus(ds), *train_decoder, *dec_train));
        if (model.empty()) model = *train_decoder;
      }
      if (!model.empty()) {
        dec->seed = flags->templates.seed;
        dec->filter = flags->templates.filter;
        creative::GenerateReport drep;
        ADREC_ASSIGN_OR_RETURN(std::vector<creative::CreativeVariant> dv,
                               creative::GenerateDecoderVariants(ds, model, *dec, &drep));
        v.insert(v.end(), dv.begin(), dv.end());
        result["decoder"] = {{"model", model}, {"variants", drep.variants}, {"rejected", drep.rejected},
                             {"rejections", drep.rejections}};
      }
      ADREC_RETURN_IF_ERROR(creative::WriteVariants(*out, v));
      result["out"] = *out;
      PrintResult(ctx, result);
      return Status::Ok();
    };
  });
}

void AddSimulateCommand(CLI::App& app, Context& ctx) {
  auto world = std::make_shared<std::string>(), variants = std::make_shared<std::string>();
  auto policies = std::make_shared<std::string>("thompson");
  auto o = std::make_shared<creative::SimulateOptions>();
  auto flags = std::make_shared<VariantFlags>();
  CLI::App* cmd = app.add_subcommand(
      "simulate", "Run the creative bandit's closed loop against a synthetic world: regret and CTR day by day");
  cmd->add_option("--world", *world, "A synthetic world (adrec gen)")->required();
  cmd->add_option("--days", o->days, "Days to simulate")->capture_default_str()->check(CLI::Range(1, 3650));
  cmd->add_option("--policy", *policies,
                  "random, static (the best variant per ad over all viewers, known from the truth), first, thompson or "
                  "linucb; a comma-separated list runs each")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the simulation")->capture_default_str();
  cmd->add_option("--impressions-per-day", o->impressions_per_day, "Impressions a day")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000000u));
  cmd->add_option("--ads", o->ads, "The world's most-shown ads that take part")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--creatives", *variants, "Variants file (adrec creatives); default: made here from templates");
  cmd->add_option("--alpha", o->bandit.alpha, "LinUCB's confidence width")->capture_default_str();
  cmd->add_option("--user-embedding", o->user_embedding,
                  "A ranking bundle of the world: its user embedding joins LinUCB's context (with age, gender, device, scene)");
  cmd->add_option("--prior-strength", o->bandit.prior_strength, "Thompson's prior, in impressions")->capture_default_str();
  cmd->add_option("--max-cold-share", o->bandit.max_cold_share, "Exploration limit: share of picks a cold variant keeps")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  AddVariantFlags(cmd, flags.get());
  AddJsonFlag(cmd, ctx);
  cmd->callback([=, &ctx] {
    ctx.run = [=, &ctx]() -> Status {
      ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(*world));
      std::vector<creative::CreativeVariant> v;
      if (variants->empty()) {
        ADREC_ASSIGN_OR_RETURN(v, MakeVariants(ds, *flags, nullptr));
      } else {
        ADREC_ASSIGN_OR_RETURN(v, creative::ReadVariants(*variants));
      }
      std::vector<nlohmann::ordered_json> runs;
      std::istringstream names(*policies);
      for (std::string p; std::getline(names, p, ',');) {
        creative::SimulateOptions run = *o;
        run.policy = p;
        ADREC_ASSIGN_OR_RETURN(creative::SimulateReport r, creative::Simulate(ds, v, run));
        runs.push_back(ReportJson(r));
        if (!ctx.json && !ctx.quiet) {
          std::fprintf(stderr, "%-9s CTR %.5f (true %.5f, oracle %.5f), cumulative regret %.1f over %llu impressions\n",
                       p.c_str(), r.ctr, r.expected_ctr, r.oracle_ctr, r.cumulative_regret,
                       static_cast<unsigned long long>(r.impressions));
        }
      }
      if (runs.empty()) return InvalidArgumentError("--policy: no policy named");
      if (runs.size() == 1) {
        PrintResult(ctx, runs.front());
      } else {
        PrintResult(ctx, {{"runs", runs}});
      }
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
