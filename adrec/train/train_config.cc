#include "adrec/train/train_config.h"

#include <string>
#include <vector>

#include "adrec/core/config.h"
#include "adrec/core/hash.h"

namespace adrec::train {

Status ReadSplitOptions(Config& cfg, data::SplitOptions* o) {
  o->method = "random_event";
  ADREC_RETURN_IF_ERROR(cfg.Get("data.split", &o->method));
  ADREC_RETURN_IF_ERROR(cfg.Get("data.seed", &o->seed));
  ADREC_RETURN_IF_ERROR(cfg.Get("data.train_fraction", &o->train_fraction));
  ADREC_RETURN_IF_ERROR(cfg.Get("data.valid_fraction", &o->valid_fraction));
  std::vector<std::string> positives;
  ADREC_RETURN_IF_ERROR(cfg.Get("data.positive_actions", &positives));
  for (const auto& p : positives) {
    ADREC_ASSIGN_OR_RETURN(data::Action a, data::ParseAction(p));
    o->positive_actions.push_back(a);
  }
  return Status::Ok();
}

StatusOr<Config> ParseTrainConfig(const std::string& text, const std::string& source, const std::string& model,
                                  const std::vector<std::string>& settings) {
  ADREC_ASSIGN_OR_RETURN(Config cfg, Config::Parse(text, source));
  if (!model.empty()) ADREC_RETURN_IF_ERROR(cfg.SetString("model", "name", model));
  for (const std::string& s : settings) ADREC_RETURN_IF_ERROR(cfg.Set(s));
  return cfg;
}

uint64_t TrainConfigHash(const std::string& text, const std::string& model, const std::vector<std::string>& settings) {
  std::string all = model.empty() ? text : text + "\n--model " + model;
  for (const std::string& s : settings) all += "\n--set " + s;
  return Hash64(all);
}

std::vector<std::string> ManifestSettings(const nlohmann::json& manifest) {
  std::vector<std::string> out;
  if (!manifest.contains("settings") || !manifest["settings"].is_array()) return out;
  for (const auto& s : manifest["settings"]) {
    if (s.is_string()) out.push_back(s.get<std::string>());
  }
  return out;
}

nlohmann::ordered_json SplitJson(const data::SplitOptions& o) {
  nlohmann::ordered_json j;
  j["method"] = o.method;
  j["seed"] = o.seed;
  j["train_fraction"] = o.train_fraction;
  j["valid_fraction"] = o.valid_fraction;
  std::vector<std::string> pos;
  for (auto a : o.positive_actions) pos.emplace_back(data::ActionName(a));
  j["positive_actions"] = pos;
  return j;
}

data::SplitOptions SplitFromJson(const nlohmann::json& j) {
  data::SplitOptions o;
  o.method = j.value("method", o.method);
  o.seed = j.value("seed", o.seed);
  o.train_fraction = j.value("train_fraction", o.train_fraction);
  o.valid_fraction = j.value("valid_fraction", o.valid_fraction);
  for (const auto& p : j.value("positive_actions", std::vector<std::string>{})) {
    if (auto a = data::ParseAction(p); a.ok()) o.positive_actions.push_back(*a);
  }
  return o;
}

std::filesystem::path EvalSplitDir(const nlohmann::json& manifest, const std::filesystem::path& given) {
  if (!given.empty()) return given;
  const nlohmann::json split = manifest.value("split", nlohmann::json::object());
  return split.is_object() ? std::filesystem::path(split.value("dir", "")) : std::filesystem::path();
}

StatusOr<data::Split> EvalSplit(const nlohmann::json& manifest, const std::filesystem::path& given, const data::Dataset& ds) {
  if (const auto dir = EvalSplitDir(manifest, given); !dir.empty()) return data::ReadSplit(dir, ds);
  return data::MakeSplit(ds, SplitFromJson(manifest.value("split", nlohmann::json::object())));
}

}  // namespace adrec::train
