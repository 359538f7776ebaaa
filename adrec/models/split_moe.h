// Split experts: one expert network cut into N narrower experts with no routing. The input
// fields are partitioned into N groups and each expert sees only its group, so the cost of the
// bottom layers falls by about N while the groups' outputs, concatenated, still feed every
// target's tower (the "split" mixture of experts used to slim wide CTR networks).
//
// Fields, in order: the sparse fields (named by ModelShape::sparse_names, "sparse<i>" when the
// shape has no names), then "dense" (when dense_width > 0), then "text<i>" per text field.
// Partition: `groups` in the config (every field in exactly one group), or else round-robin over
// the fields ordered by importance (most important first, ties in field order), so each expert
// gets a mix of strong and weak fields. Importances default to field order; a caller with a
// better score (a previous model's attributions, the fields' information value) sets it with
// SetFieldImportance before training.
// Config keys under the section: num_experts (default 4; capped at the number of fields when no
// groups are given), groups (optional: an array of arrays of field names; sets num_experts),
// expert_hidden (default [64]), tower_hidden (default [32]), norm (none|batch|layer), dropout.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "adrec/models/layers.h"
#include "adrec/models/model.h"

namespace adrec::models {

struct SplitMoeOptions {
  int64_t num_experts = 4;
  std::vector<std::vector<std::string>> groups;  // empty: round-robin by importance
  MlpOptions expert{.hidden = {64}};
  MlpOptions tower{.hidden = {32}};
};
StatusOr<SplitMoeOptions> ReadSplitMoeOptions(Config& cfg, std::string_view section);

// The names of `shape`'s fields in ModelInput order (see above).
std::vector<std::string> SplitMoeFieldNames(const ModelShape& shape);
// Field indices per group: round-robin over fields sorted by descending importance; each group's
// indices in ascending order.
std::vector<std::vector<int>> RoundRobinGroups(const std::vector<double>& importance, int64_t groups);

// Parameters: "experts.<g>.*" (an Mlp over group g's fields, concatenated in field order),
// "towers.<t>.*" (over all experts' outputs, concatenated).
class SplitMoeModel : public RankingModel {
 public:
  // InvalidArgument naming `model.groups` for an unknown, repeated or missing field.
  static StatusOr<std::shared_ptr<SplitMoeModel>> Create(const ModelShape& shape, const SplitMoeOptions& options,
                                                         std::string_view section = "model");
  torch::Tensor forward(const embedding::ModelInput& input) override;
  std::string kind() const override { return "split_moe"; }

  // Re-partitions the fields round-robin by `importance` (one score per field, in field order;
  // higher = more important) and re-creates the experts with fresh weights: call it before
  // making the optimiser. FailedPrecondition when the config fixed the groups; InvalidArgument
  // for a wrong count or a non-finite score.
  Status SetFieldImportance(const std::vector<double>& importance);
  // Field indices (SplitMoeFieldNames order) per expert.
  const std::vector<std::vector<int>>& groups() const { return groups_; }

 private:
  SplitMoeModel(const ModelShape& shape, const SplitMoeOptions& options, std::vector<std::vector<int>> groups);
  void BuildExperts();
  ModelShape shape_;
  SplitMoeOptions options_;
  std::vector<std::vector<int>> groups_;
  std::vector<int64_t> field_widths_;
  torch::nn::ModuleList experts_{nullptr};
  std::vector<Tower> towers_;
};

}  // namespace adrec::models
