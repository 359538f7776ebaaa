// The files a training run writes besides the bundle, shared by the trainers (ranking,
// sequence, HSTU ranker): the checkpoint directory (state.safetensors with the model tensors
// and the CPU generator "rng/cpu", optimizer.pt, trainer.json with the run's progress, the model
// name and the config hash) and the final metrics added to the bundle's manifest.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "adrec/core/status.h"

namespace torch::optim {
class Optimizer;
}

namespace adrec::train {

// Writes the checkpoint into `dir` atomically (a staging directory renamed over the old one).
Status WriteCheckpointDir(const std::filesystem::path& dir, std::vector<std::pair<std::string, torch::Tensor>> tensors,
                          torch::optim::Optimizer& optimizer, const nlohmann::ordered_json& trainer);

// trainer.json of the checkpoint in `dir`: NotFound without one, DataLoss when unreadable,
// FailedPrecondition when written for another model or config.
StatusOr<nlohmann::json> ReadCheckpointJson(const std::filesystem::path& dir, const std::string& model,
                                            uint64_t config_hash);

// Loads state.safetensors onto `device`, hands its tensors to `restore` (with the file name for
// errors), restores the CPU generator and loads the optimiser state.
Status LoadCheckpointState(
    const std::filesystem::path& dir, torch::Device device, torch::optim::Optimizer& optimizer,
    const std::function<Status(const std::map<std::string, torch::Tensor>&, const std::string&)>& restore);

// Adds the best valid metrics, the final test (or valid) metrics under `part` and the run's
// summary to the bundle's manifest.json (read as written, key order kept), and to `summary`.
Status AddFinalMetrics(const std::filesystem::path& bundle, const nlohmann::ordered_json& valid,
                       const std::string& part, const nlohmann::ordered_json& test, nlohmann::ordered_json* summary);

}  // namespace adrec::train
