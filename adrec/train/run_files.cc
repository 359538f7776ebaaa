#include "adrec/train/run_files.h"

#include <torch/torch.h>

#include "adrec/core/file.h"
#include "adrec/text/tensor_io.h"
#include "adrec/train/ranking_model.h"

namespace adrec::train {

Status WriteCheckpointDir(const std::filesystem::path& dir, std::vector<std::pair<std::string, torch::Tensor>> tensors,
                          torch::optim::Optimizer& optimizer, const nlohmann::ordered_json& trainer) {
  ADREC_ASSIGN_OR_RETURN(StagingDir stage, StagingDir::Create(dir));
  tensors.emplace_back("rng/cpu", at::detail::getDefaultCPUGenerator().get_state());
  ADREC_RETURN_IF_ERROR(text::SaveTensors(stage.path() / "state.safetensors", tensors));
  try {
    torch::save(optimizer, (stage.path() / "optimizer.pt").string());
  } catch (const std::exception& e) {
    return IoError("cannot write the optimiser state: " + std::string(e.what()));
  }
  ADREC_RETURN_IF_ERROR(AtomicWriteFile(stage.path() / "trainer.json", trainer.dump(2) + "\n"));
  return stage.Commit(/*overwrite=*/true);
}

StatusOr<nlohmann::json> ReadCheckpointJson(const std::filesystem::path& dir, const std::string& model,
                                            uint64_t config_hash) {
  const auto tj = dir / "trainer.json";
  if (!std::filesystem::exists(tj)) return NotFoundError("--resume: no checkpoint in " + dir.string());
  ADREC_ASSIGN_OR_RETURN(std::string text, ReadFile(tj));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    return DataLossError(tj.string() + ": not valid JSON: " + e.what());
  }
  if (j.value("model", "") != model) {
    return FailedPreconditionError(tj.string() + ": the checkpoint is of model '" + j.value("model", "") +
                                   "', the config asks for '" + model + "'");
  }
  if (j.value("config_hash", uint64_t{0}) != config_hash) {
    return FailedPreconditionError(tj.string() + ": the checkpoint was written with another config; resume with the same --config");
  }
  return j;
}

Status LoadCheckpointState(
    const std::filesystem::path& dir, torch::Device device, torch::optim::Optimizer& optimizer,
    const std::function<Status(const std::map<std::string, torch::Tensor>&, const std::string&)>& restore) {
  const auto state = dir / "state.safetensors";
  ADREC_ASSIGN_OR_RETURN(auto tensors, text::LoadTensors(state, device));
  ADREC_RETURN_IF_ERROR(restore(tensors, state.string()));
  if (auto it = tensors.find("rng/cpu"); it != tensors.end()) {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    gen.set_state(it->second.cpu());
  }
  try {
    torch::load(optimizer, (dir / "optimizer.pt").string(), device);
  } catch (const std::exception& e) {
    return DataLossError((dir / "optimizer.pt").string() + ": cannot load the optimiser state: " + e.what());
  }
  return Status::Ok();
}

Status AddFinalMetrics(const std::filesystem::path& bundle, const nlohmann::ordered_json& valid,
                       const std::string& part, const nlohmann::ordered_json& test, nlohmann::ordered_json* summary) {
  const auto path = bundle / kBundleManifestFile;
  ADREC_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::ordered_json manifest;
  try {
    manifest = nlohmann::ordered_json::parse(text);
  } catch (const std::exception& e) {
    return DataLossError(path.string() + ": not valid JSON: " + e.what());
  }
  manifest["metrics"] = {{"valid", valid}, {part, test}};
  manifest["train"] = *summary;
  ADREC_RETURN_IF_ERROR(AtomicWriteFile(path, manifest.dump(2) + "\n"));
  (*summary)["valid"] = valid;
  (*summary)[part] = test;
  return Status::Ok();
}

}  // namespace adrec::train
