// What the Hugging Face model loaders (bert.h, llama.h) share: reading config.json fields with
// errors that name the file and field (present with the wrong JSON type is an error, absent
// keeps the default), and describing tensors in those errors.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "adrec/core/status.h"

namespace adrec::text::hf {

// `text` as a JSON object; InvalidArgument naming `source` otherwise.
StatusOr<nlohmann::json> ParseObject(std::string_view text, std::string_view source);

Status FieldError(std::string_view source, std::string_view key, std::string_view what);
// Integers and doubles must be positive (sizes, epsilons, rope theta).
Status ReadInt(const nlohmann::json& j, std::string_view source, const char* key, int64_t* out);
Status ReadDouble(const nlohmann::json& j, std::string_view source, const char* key, double* out);
Status ReadString(const nlohmann::json& j, std::string_view source, const char* key, std::optional<std::string>* out);
Status ReadBool(const nlohmann::json& j, std::string_view source, const char* key, bool* out);
// "architectures": a list of strings (absent or null: empty).
Status ReadArchitectures(const nlohmann::json& j, std::string_view source, std::vector<std::string>* out);

// A Hugging Face model directory's files: config.json's text, and the path of its single
// model.safetensors. Missing files are NotFound naming the path (with a hint when the directory
// holds pytorch_model.bin instead); sharded checkpoints are Unimplemented.
StatusOr<std::string> ReadModelConfig(const std::filesystem::path& model_dir);
StatusOr<std::filesystem::path> ModelWeightsPath(const std::filesystem::path& model_dir);

bool IsFloatDtype(c10::ScalarType t);
// The most negative finite value of `dtype`: the additive mask of padded keys.
double Lowest(c10::ScalarType dtype);

}  // namespace adrec::text::hf
