// The two-tower model (Yi et al. 2019, "Sampling-Bias-Corrected Neural Modeling for Large Corpus
// Item Recommendations"; the retrieval model of most ad stacks): a query tower over the user and
// context fields and an item tower over the item's own fields (source "item" or "item.<col>",
// text embeddings of items included), each an MLP to `dim` per target; the logit of target t is
// the dot product of the two towers' t-th slices plus a bias. The item tower depends on the item
// alone, so its outputs can be precomputed and searched by ANN.
// Config keys under the section: hidden (default [128, 64]), dim (32), norm, dropout,
// item_fields (field names; default: every field whose source is the item's).
// Dense fields go to the query tower (they are context or user counters in the configs; a
// feature of the pair would break the item tower's independence, so keep those out).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "adrec/models/layers.h"
#include "adrec/models/model.h"

namespace adrec::models {

struct TwoTowerOptions {
  MlpOptions mlp{.hidden = {128, 64}};
  int64_t dim = 32;
  std::vector<std::string> item_fields;  // empty: by source
};
StatusOr<TwoTowerOptions> ReadTwoTowerOptions(Config& cfg, std::string_view section);
// Which sparse / text fields feed the item tower; InvalidArgument when a tower would be empty or
// item_fields names a field the shape lacks.
Status CheckTwoTowerShape(const ModelShape& shape, const TwoTowerOptions& options);

// Parameters: "query.*", "item.*" (the towers' MLPs), "query_out.*", "item_out.*" (linear to
// dim × targets), "out.bias" [T].
class TwoTowerModel : public RankingModel {
 public:
  TwoTowerModel(const ModelShape& shape, const TwoTowerOptions& options);
  torch::Tensor forward(const embedding::ModelInput& input) override;
  // The query and item vectors side by side [B, 2 · dim · T]: what CTRL aligns with the text.
  torch::Tensor represent(const embedding::ModelInput& input) override;
  std::string kind() const override { return "two_tower"; }
  // Item vectors [B, T, dim] (inputs of the item fields only are read).
  torch::Tensor ItemVectors(const embedding::ModelInput& input);
  // Query vectors [B, T, dim]: the logit of target t is their dot product with the item's t-th
  // vector plus a per-target bias, so the top items by inner product are the top by score.
  torch::Tensor QueryVectors(const embedding::ModelInput& input);
  // Both [B, T, dim] from one pass: (query, item).
  std::pair<torch::Tensor, torch::Tensor> Vectors(const embedding::ModelInput& input);

 private:
  ModelShape shape_;
  TwoTowerOptions options_;
  std::vector<bool> sparse_item_, text_item_;
  Mlp query_{nullptr}, item_{nullptr};
  torch::nn::Linear query_out_{nullptr}, item_out_{nullptr};
  std::shared_ptr<torch::nn::Module> out_;
  torch::Tensor bias_;  // out_'s "bias" [T]
};

}  // namespace adrec::models
