#include "adrec/text/hf_config.h"

#include <torch/torch.h>  // the module's precompiled header: free here

#include <limits>

#include "adrec/core/file.h"

namespace adrec::text::hf {

using nlohmann::json;

StatusOr<json> ParseObject(std::string_view text, std::string_view source) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgumentError(std::string(source) + ": not valid JSON");
  if (!j.is_object()) return InvalidArgumentError(std::string(source) + ": expected a JSON object");
  return j;
}

Status FieldError(std::string_view source, std::string_view key, std::string_view what) {
  return InvalidArgumentError(std::string(source) + ": field '" + std::string(key) + "' " + std::string(what));
}

Status ReadInt(const json& j, std::string_view source, const char* key, int64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_number_integer()) return FieldError(source, key, "must be an integer, not " + it->dump());
  *out = it->get<int64_t>();
  if (*out <= 0) return FieldError(source, key, "must be positive, not " + std::to_string(*out));
  return Status::Ok();
}

Status ReadDouble(const json& j, std::string_view source, const char* key, double* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_number()) return FieldError(source, key, "must be a number, not " + it->dump());
  *out = it->get<double>();
  if (!(*out > 0)) return FieldError(source, key, "must be positive, not " + it->dump());
  return Status::Ok();
}

Status ReadString(const json& j, std::string_view source, const char* key, std::optional<std::string>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) return FieldError(source, key, "must be a string, not " + it->dump());
  *out = it->get<std::string>();
  return Status::Ok();
}

Status ReadBool(const json& j, std::string_view source, const char* key, bool* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_boolean()) return FieldError(source, key, "must be true or false, not " + it->dump());
  *out = it->get<bool>();
  return Status::Ok();
}

Status ReadArchitectures(const json& j, std::string_view source, std::vector<std::string>* out) {
  auto it = j.find("architectures");
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return FieldError(source, "architectures", "must be a list of strings");
  for (const json& a : *it) {
    if (!a.is_string()) return FieldError(source, "architectures", "must be a list of strings, not " + it->dump());
    out->push_back(a.get<std::string>());
  }
  return Status::Ok();
}

StatusOr<std::string> ReadModelConfig(const std::filesystem::path& model_dir) {
  std::error_code ec;
  const std::filesystem::path config_path = model_dir / "config.json";
  if (!std::filesystem::is_regular_file(config_path, ec)) {
    return NotFoundError(config_path.string() + ": no such file (a Hugging Face model directory has config.json " +
                         "and model.safetensors)");
  }
  return ReadFile(config_path);
}

StatusOr<std::filesystem::path> ModelWeightsPath(const std::filesystem::path& model_dir) {
  std::error_code ec;
  const std::filesystem::path weights_path = model_dir / "model.safetensors";
  if (std::filesystem::is_regular_file(weights_path, ec)) return weights_path;
  if (std::filesystem::exists(model_dir / "model.safetensors.index.json", ec)) {
    return UnimplementedError(weights_path.string() + ": no such file; sharded checkpoints " +
                              "(model.safetensors.index.json) are not supported");
  }
  std::string hint = std::filesystem::exists(model_dir / "pytorch_model.bin", ec)
                         ? " (only safetensors weights are read, not pytorch_model.bin)"
                         : "";
  return NotFoundError(weights_path.string() + ": no such file" + hint);
}

bool IsFloatDtype(c10::ScalarType t) {
  return t == torch::kFloat32 || t == torch::kFloat16 || t == torch::kBFloat16 || t == torch::kFloat64;
}

double Lowest(c10::ScalarType dtype) {
  switch (dtype) {
    case torch::kBFloat16: return static_cast<float>(std::numeric_limits<c10::BFloat16>::lowest());
    case torch::kFloat16: return static_cast<float>(std::numeric_limits<c10::Half>::lowest());
    default: return std::numeric_limits<float>::lowest();
  }
}

}  // namespace adrec::text::hf
