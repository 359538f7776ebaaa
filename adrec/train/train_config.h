// What `adrec train` and `adrec features` read from a config's [data] section, in one place so
// the exported arrays and the trainer's batches come from the same split. Torch-free.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adrec/core/status.h"
#include "adrec/data/split.h"

namespace adrec {
class Config;
}

namespace adrec::train {

// The split of a config's [data] section: data.split (default "random_event"), data.seed,
// data.train_fraction, data.valid_fraction, data.positive_actions. Made on the fly by
// data::MakeSplit, deterministic in its seed.
Status ReadSplitOptions(Config& cfg, data::SplitOptions* options);

// A config's text parsed, with `model` (adrec train --model; "" = none) as its model.name and
// each of `settings` (adrec train --set section.key=VALUE; Config::Set) applied in order.
StatusOr<Config> ParseTrainConfig(const std::string& text, const std::string& source, const std::string& model,
                                  const std::vector<std::string>& settings = {});
// What a checkpoint records of the config it was written with: the text, the --model override
// and the --set settings.
uint64_t TrainConfigHash(const std::string& text, const std::string& model, const std::vector<std::string>& settings = {});

// The --set settings a bundle was trained with ("settings" in manifest.json; none when absent).
std::vector<std::string> ManifestSettings(const nlohmann::json& manifest);

// The split options as bundles record them ("split" in manifest.json), and back: evaluation
// remakes the very split the model was trained on.
nlohmann::ordered_json SplitJson(const data::SplitOptions& options);
data::SplitOptions SplitFromJson(const nlohmann::json& j);

// The split directory an evaluation reads: `given` (--split-dir) when set, else the one the
// bundle was trained on ("split"."dir" of its manifest, recorded as an absolute path when
// training read one), else empty (remake the split from the recorded options).
std::filesystem::path EvalSplitDir(const nlohmann::json& manifest, const std::filesystem::path& given);
// The split an evaluation of the bundle uses: read from EvalSplitDir's directory, or remade on
// `ds` from the options the manifest records.
StatusOr<data::Split> EvalSplit(const nlohmann::json& manifest, const std::filesystem::path& given, const data::Dataset& ds);

}  // namespace adrec::train
