// Ranking models (one file each) behind one interface and a factory that builds any of them
// from a name, as faiss builds indexes from a string: MakeRankingModel("dcnv2", shape, cfg).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <torch/nn/module.h>

#include "adrec/core/status.h"
#include "adrec/embedding/input.h"

namespace adrec {
class Config;
}

namespace adrec::models {

// What the feature spec hands a model.
struct ModelShape {
  std::vector<int> sparse_dims;  // per sparse field
  int dense_width = 0;
  std::vector<int> text_dims;    // per text field
  std::vector<std::string> targets;  // output heads, in order (click, download, conversion…)
  int num_scenes = 1;
  std::vector<std::string> sparse_names;  // field names (split-expert groups, explanations)
  // Where each field reads from ("item", "item.cat1", "user.age", "history.item", …; empty in
  // hand-made shapes): the two-tower model puts item fields on its item tower.
  std::vector<std::string> sparse_sources, text_names, text_sources;
  int num_fields() const { return static_cast<int>(sparse_dims.size() + text_dims.size()) + (dense_width > 0 ? 1 : 0); }
};

class RankingModel : public torch::nn::Module {
 public:
  // Logits [B, targets].
  virtual torch::Tensor forward(const embedding::ModelInput& input) = 0;
  virtual std::string kind() const = 0;
  // [B, H]: what CTRL aligns with a text model's representation (train/ctrl.h). Models whose
  // heads read a hidden layer return it; the default is the concatenated input features.
  virtual torch::Tensor represent(const embedding::ModelInput& input);
  // LR, FM and DeepFM read ModelInput::linear: the collection must be built with linear terms.
  virtual bool wants_linear_terms() const { return false; }
};

// Reads the model's options from `cfg` under `section` (model.hidden, model.cross_layers, …;
// every model documents its keys in its header and configs/). InvalidArgument naming the key
// for a bad option or a shape the model cannot take (FM with unequal field dims); a name that
// is not a ranking model of the registry (registry.h) is InvalidArgument listing them.
StatusOr<std::shared_ptr<RankingModel>> MakeRankingModel(std::string_view name, const ModelShape& shape, Config& cfg,
                                                         std::string_view section = "model");
// Whether MakeRankingModel has a factory for `name` (the registry test checks every entry).
bool HasRankingFactory(std::string_view name);

}  // namespace adrec::models
