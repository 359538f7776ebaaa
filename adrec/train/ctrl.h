// CTRL (Li et al. 2023, "CTRL: Connect Collaborative and Language Model for CTR Prediction"):
// before the CTR training, the tabular model's sample representation is aligned with a language
// model's by contrastive learning (symmetric InfoNCE over the batch), then the tabular model is
// fine-tuned alone. The text side is read from text-embedding fields that only this stage uses:
// they leave the model's feature spec, so the bundle, and serving, never need a language model.
//
// [ctrl] keys: text_fields (names of [[features.fields]] of kind "text"; required), epochs (1),
// temperature (0.1), dim (64: the shared space), lr (1e-3), batch_size (0 = train.batch_size),
// representation ("model": the model's represent(): DCN-V2's head input, the two-tower's query
// and item vectors, the concatenated inputs elsewhere | "embeddings": the concatenated inputs).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adrec/core/status.h"
#include "adrec/data/features.h"
#include "adrec/train/ranking_model.h"

namespace adrec {
class Config;
}

namespace adrec::train {

struct CtrlSettings {
  std::vector<std::string> text_fields;  // empty = no CTRL stage
  int epochs = 1;
  double temperature = 0.1;
  int64_t dim = 64;
  double lr = 1e-3;
  size_t batch_size = 0;
  std::string representation = "model";
  bool enabled() const { return !text_fields.empty(); }
};

// Reads [ctrl] (absent = disabled). InvalidArgument naming the key.
Status ReadCtrlSettings(Config& cfg, CtrlSettings* s);

// Moves the text fields CTRL reads out of `spec` into a spec of their own (same samples and
// targets). InvalidArgument naming a field that is missing or not of kind "text".
StatusOr<data::FeatureSpec> TakeCtrlFields(data::FeatureSpec* spec, const CtrlSettings& s, const std::string& source);

struct CtrlRunOptions {
  uint64_t seed = 42;
  size_t threads = 0;
  bool show_progress = true;
  bool autocast = false;  // bf16 on CUDA
  const std::atomic<bool>* stop = nullptr;
};

// Runs the contrastive stage on `m` (its dense part and embedding rows are updated; the two
// projection heads are dropped afterwards). `text_spec` must be bound to `ds`. Returns
// {"text_fields", "text_width", "representation", "dim", "temperature", "epochs", "steps",
// "batch_size", "first_loss", "last_epoch_loss", "chance_loss", "seconds"}. Cancelled when
// `stop` is raised (nothing is kept to resume), DataLoss on a non-finite loss.
StatusOr<nlohmann::ordered_json> PretrainCtrl(RankingModel& m, const data::Dataset& ds, const data::FeatureSpec& text_spec,
                                              const data::SampleSet& train, size_t default_batch, const CtrlSettings& s,
                                              const CtrlRunOptions& o);

}  // namespace adrec::train
