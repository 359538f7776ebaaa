#include "adrec/models/bundle.h"

#include <torch/torch.h>

#include "adrec/core/file.h"
#include "adrec/core/text.h"
#include "adrec/tensor/tensor_io.h"

#ifndef ADREC_VERSION
#define ADREC_VERSION "dev"
#endif

namespace adrec::models {

nlohmann::ordered_json NewBundleManifest(std::string_view kind, std::string_view model) {
  nlohmann::ordered_json m;
  m["format"] = "adrec-bundle";
  m["format_version"] = kBundleFormatVersion;
  m["kind"] = std::string(kind);
  m["model"] = std::string(model);
  m["adrec_version"] = ADREC_VERSION;
  m["created_utc"] = NowUtc();
  return m;
}

Status WriteBundle(const std::filesystem::path& dir, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                   const nlohmann::ordered_json& manifest) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("cannot create bundle directory " + dir.string() + ": " + ec.message());
  ADREC_RETURN_IF_ERROR(tensor::SaveTensors(dir / kBundleWeightsFile, tensors,
                                            {{"format", "pt"}, {"adrec_model", manifest.value("model", "")}}));
  return AtomicWriteFile(dir / kBundleManifestFile, manifest.dump(2) + "\n");
}

namespace {
template <typename Json>
StatusOr<Json> ParseManifest(const std::filesystem::path& dir) {
  const auto path = dir / kBundleManifestFile;
  if (!std::filesystem::exists(path)) {
    return NotFoundError("bundle " + dir.string() + ": no " + kBundleManifestFile + " (not a bundle directory?)");
  }
  ADREC_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  try {
    return Json::parse(text);
  } catch (const std::exception& e) {
    return DataLossError(path.string() + ": not valid JSON: " + e.what());
  }
}
}  // namespace

StatusOr<nlohmann::json> ReadBundleManifest(const std::filesystem::path& dir, std::string_view kind) {
  ADREC_ASSIGN_OR_RETURN(nlohmann::json j, ParseManifest<nlohmann::json>(dir));
  const std::string path = (dir / kBundleManifestFile).string();
  if (!j.is_object() || !j.contains("format") || !j["format"].is_string() || j["format"] != "adrec-bundle") {
    return InvalidArgumentError(path + ": not an adrec bundle manifest");
  }
  if (!j.contains("kind") || !j["kind"].is_string() || !j.contains("model") || !j["model"].is_string()) {
    return DataLossError(path + ": \"kind\" and \"model\" must be strings");
  }
  if (!kind.empty() && j["kind"] != kind) {
    return InvalidArgumentError(path + ": not a " + std::string(kind) + " bundle (kind '" + j["kind"].get<std::string>() + "')");
  }
  const nlohmann::json& version = j.contains("format_version") ? j["format_version"] : nlohmann::json();
  if (!version.is_number_integer() || version.get<int64_t>() != kBundleFormatVersion) {
    return InvalidArgumentError(path + ": format_version " + version.dump() + " is not supported (this adrec reads " +
                                std::to_string(kBundleFormatVersion) + ")");
  }
  return j;
}

StatusOr<std::map<std::string, torch::Tensor>> ReadBundleWeights(const std::filesystem::path& dir, torch::Device device) {
  const auto weights = dir / kBundleWeightsFile;
  if (!std::filesystem::exists(weights)) return NotFoundError("bundle " + dir.string() + ": no " + kBundleWeightsFile);
  return tensor::LoadTensors(weights, device);
}

Status EditBundleManifest(const std::filesystem::path& dir, const std::function<void(nlohmann::ordered_json&)>& edit) {
  ADREC_ASSIGN_OR_RETURN(nlohmann::ordered_json manifest, ParseManifest<nlohmann::ordered_json>(dir));
  edit(manifest);
  return AtomicWriteFile(dir / kBundleManifestFile, manifest.dump(2) + "\n");
}

StatusOr<std::string> ManifestString(const nlohmann::json& manifest, const std::filesystem::path& dir, const std::string& key) {
  if (!manifest.contains(key) || !manifest[key].is_string()) {
    return DataLossError((dir / kBundleManifestFile).string() + ": \"" + key + "\" is missing or not a string");
  }
  return manifest[key].get<std::string>();
}

}  // namespace adrec::models
