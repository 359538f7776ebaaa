// Language-model features of a dataset: item texts (title, description, taxonomy, tags) and
// user behaviour prompts ("clicked: 王者荣耀 (games › MOBA); downloaded: …", per a template),
// embedded by a TextEncoder, reduced by PCA fitted on the training part, and stored as a
// sparse_vector column that any feature spec reads as a `text` field (DESIGN.md, seed (b)).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"
#include "adrec/data/split.h"
#include "adrec/text/text_encoder.h"

namespace adrec::text {

// configs/prompts/*.toml, section [prompt].
struct PromptTemplate {
  std::string header = "Recent activity:";
  size_t max_events = 20;  // the most recent ones
  std::vector<data::Action> actions = {data::Action::kClick, data::Action::kDownload, data::Action::kInstall,
                                       data::Action::kConversion, data::Action::kPurchase, data::Action::kRating,
                                       data::Action::kLike, data::Action::kAddToCart};
  // Placeholders: {action} ("clicked"), {title}, {category} (taxonomy path to level 2, else the
  // tags), {cat1} {cat2} {cat3}.
  std::string event = "{action}: {title} ({category})";
  std::string separator = "; ";
};

// Unknown keys, unknown actions and unknown placeholders are InvalidArgument naming them.
StatusOr<PromptTemplate> ReadPromptTemplate(const std::filesystem::path& path);

// One text per item: "title. description. Category: a › b › c. Tags: x, y" from the columns the
// dataset has.
std::vector<std::string> ItemTexts(const data::Dataset& ds);
// One prompt per user from the events `split` puts in train (all events without a split), so
// valid/test behaviour never leaks into a feature; "" for a user with no such event.
std::vector<std::string> UserPrompts(const data::Dataset& ds, const data::Split* split, const PromptTemplate& prompt);

struct TextColumnOptions {
  std::string what = "items";  // items | users
  std::string column = "text_emb";
  int64_t dim = 32;  // PCA components; 0 keeps the encoder's dimension
};

struct TextColumnReport {
  std::string column, encoder;
  size_t rows = 0, fit_rows = 0, empty_rows = 0;
  int64_t encoder_dim = 0, dim = 0;
  double explained_variance = 1.0;  // kept by the PCA (1 without)
  TextEncodeStats stats;
  // The fitted PCA as a safetensors file (mean [d], components [k, d]; metadata: encoder, what,
  // column, explained_variance), for the caller to store beside the dataset; empty without PCA.
  std::string pca_safetensors;
};

// Embeds `texts` (one per row of the items or users table), fits PCA on the rows that have train
// events (every non-empty row without a split), and adds or replaces `column` in the table.
StatusOr<TextColumnReport> AddTextColumn(data::Dataset* ds, const data::Split* split, const TextEncoder& encoder,
                                         const std::vector<std::string>& texts, const TextColumnOptions& options);

// The dataset's text side files (data::kDatasetTextDir): one PCA per embedding column, named
// "<what>_<column>.pca.safetensors".
std::string PcaFileName(const TextColumnOptions& options);
// Every side file of `dataset` (name -> bytes), read before the dataset is rewritten.
StatusOr<std::vector<std::pair<std::string, std::string>>> ReadTextSideFiles(const std::filesystem::path& dataset);
// Writes `kept` (but the file `report` replaces) and the report's PCA into `dataset`'s side folder.
Status WriteTextSideFiles(const std::filesystem::path& dataset, const std::vector<std::pair<std::string, std::string>>& kept,
                          const TextColumnOptions& options, const TextColumnReport& report);

}  // namespace adrec::text
