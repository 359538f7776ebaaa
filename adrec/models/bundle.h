// Model bundles (DESIGN.md, "Model bundle directory"): manifest.json (format version, kind,
// model, feature spec or shape, config, split, metrics, provenance) beside model.safetensors.
// The one module that writes and reads them: every trainer, `adrec eval` and the server.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "adrec/core/status.h"

namespace adrec::models {

inline constexpr int kBundleFormatVersion = 1;
inline constexpr const char* kBundleWeightsFile = "model.safetensors";
inline constexpr const char* kBundleManifestFile = "manifest.json";

// Bundle kinds: which loader reads the weights.
inline constexpr const char* kRankingBundle = "ranking";                   // LR … two-tower over a feature spec
inline constexpr const char* kSequenceBundle = "sequence";                 // SASRec, HSTU (next item)
inline constexpr const char* kSequenceRankingBundle = "sequence_ranking";  // the HSTU ranker

// The fields every manifest starts with: format, format_version, kind, model, adrec_version,
// created_utc.
nlohmann::ordered_json NewBundleManifest(std::string_view kind, std::string_view model);

// Writes model.safetensors (with the model's name in its metadata), then manifest.json, each
// atomically and the manifest last, so a reader never sees a manifest without its weights.
Status WriteBundle(const std::filesystem::path& dir, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                   const nlohmann::ordered_json& manifest);

// The parsed manifest.json of a bundle of `kind` ("" = any kind). NotFound when there is none,
// DataLoss for bad JSON, InvalidArgument for another kind or an unknown format version, each
// naming the file.
StatusOr<nlohmann::json> ReadBundleManifest(const std::filesystem::path& dir, std::string_view kind);

// model.safetensors of a bundle on `device`; NotFound naming the file when it is missing.
StatusOr<std::map<std::string, torch::Tensor>> ReadBundleWeights(const std::filesystem::path& dir, torch::Device device);

// Rewrites manifest.json atomically after `edit` changed it (read with its key order kept).
Status EditBundleManifest(const std::filesystem::path& dir, const std::function<void(nlohmann::ordered_json&)>& edit);

// The manifest's string field `key` ("config", …): DataLoss naming the file when absent.
StatusOr<std::string> ManifestString(const nlohmann::json& manifest, const std::filesystem::path& dir, const std::string& key);

}  // namespace adrec::models
