// adrec tag: the 3-level taxonomy of every ad from its text, scored against the dataset's own
// taxonomy columns (accuracy per level, as the seed's table reports it).
#include <fstream>

#include <fmt/format.h>

#include "adrec/core/log_line.h"
#include "adrec/data/dataset_io.h"
#include "adrec/text/tagging.h"
#include "adrec/text/text_cache.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {

void AddTagCommand(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string data, model, out, cache;
    bool no_cache = false;
    std::vector<std::string> attributes;
    text::TagOptions tag;
    text::TextEncoderOptions encoder;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("tag", "Tag every ad with the 3-level taxonomy from its text; accuracy per level");
  cmd->add_option("--data", f->data, "Dataset directory (with a taxonomy and cat1..cat3 item columns)")->required();
  cmd->add_option("--model", f->model, "Text model directory; default the venv's all-MiniLM-L6-v2; hashed-ngram: the fallback");
  cmd->add_option("--mode", f->tag.mode, "zero-shot (label descriptions) | few-shot (k labelled ads per node)")
      ->capture_default_str()
      ->check(CLI::IsMember({"zero-shot", "few-shot"}));
  cmd->add_option("--shots", f->tag.shots, "few-shot: labelled ads per node")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--seed", f->tag.seed, "few-shot: which ads are labelled")->capture_default_str();
  cmd->add_option("--attributes", f->attributes,
                  "Categorical item columns to read from the text too, e.g. text_type,lang,objective")
      ->delimiter(',');
  cmd->add_option("--out", f->out, "Write one JSON line per ad: item, predicted and true path (and attributes)");
  cmd->add_option("--cache", f->cache, "Text-embedding cache (as adrec embed)");
  cmd->add_flag("--no-cache", f->no_cache, "Embed every text, reading and writing no cache");
  cmd->add_option("--device", f->encoder.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--threads", f->encoder.threads, "Model threads (0: libtorch's default)")->capture_default_str();
  AddJsonFlag(cmd, ctx);
  cmd->callback([f, &ctx] {
    ctx.run = [f, &ctx]() -> Status {
      ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(f->data));
      f->encoder.show_progress = !ctx.quiet;
      ADREC_ASSIGN_OR_RETURN(std::unique_ptr<text::TextEncoder> encoder, text::OpenTextEncoder(f->model, f->encoder));
      // The attributes embed the same texts again: the cache answers them.
      ADREC_ASSIGN_OR_RETURN(encoder, text::WithTextCache(std::move(encoder), f->cache, f->no_cache));
      ADREC_ASSIGN_OR_RETURN(text::TagResult r, text::TagTaxonomy(ds, *encoder, f->tag));
      ADREC_ASSIGN_OR_RETURN(std::vector<text::AttributeResult> attrs, text::TagAttributes(ds, *encoder, f->attributes, f->tag));
      if (!f->out.empty()) {
        std::ofstream out(f->out);
        if (!out) return IoError("cannot write " + f->out);
        const std::string_view cats[] = {data::cols::kCategory1, data::cols::kCategory2, data::cols::kCategory3};
        for (uint32_t i = 0; i < ds.num_items(); ++i) {
          nlohmann::ordered_json row = {{"item", ds.items.Name(i)}, {"labelled", !r.evaluated[i]}};
          for (int l = 0; l < 3; ++l) {
            row["predicted"].push_back(r.predicted[i][l] ? ds.taxonomy.nodes[r.predicted[i][l]].name_en : "");
            const uint32_t t = ds.item_table.Find(cats[l])->u32[i];
            row["true"].push_back(t ? ds.taxonomy.nodes[t].name_en : "");
          }
          for (const text::AttributeResult& a : attrs) {
            const uint32_t t = ds.item_table.Find(a.column)->u32[i];
            row["attributes"][a.column] = {{"predicted", a.classes[a.predicted[i] - 1]},
                                           {"true", t ? a.classes[t - 1] : ""}};
          }
          out << row.dump() << "\n";
        }
      }
      nlohmann::ordered_json levels = nlohmann::ordered_json::array();
      for (int l = 0; l < 3; ++l) {
        levels.push_back({{"level", l + 1},
                          {"evaluated", r.levels[l].evaluated},
                          {"accuracy", r.levels[l].accuracy()},
                          {"accuracy_given_parent", r.levels[l].conditional_accuracy()}});
      }
      nlohmann::ordered_json attributes = nlohmann::ordered_json::object();
      for (const text::AttributeResult& a : attrs) {
        attributes[a.column] = {{"classes", a.classes},
                                {"evaluated", a.evaluated_count},
                                {"labelled", a.labelled},
                                {"accuracy", a.accuracy()},
                                {"majority_accuracy", a.majority_accuracy()}};
      }
      PrintResult(ctx, {{"encoder", encoder->name()},
                        {"mode", f->tag.mode},
                        {"items", ds.num_items()},
                        {"labelled", r.labelled},
                        {"levels", levels},
                        {"attributes", attributes}});
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
