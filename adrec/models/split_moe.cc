#include "adrec/models/split_moe.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "adrec/core/config.h"

namespace adrec::models {

StatusOr<SplitMoeOptions> ReadSplitMoeOptions(Config& cfg, std::string_view section) {
  SplitMoeOptions o;
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "num_experts", 1, &o.num_experts));
  const std::string groups = OptionKey(section, "groups");
  if (cfg.Has(groups)) {
    // An array of arrays is one leaf to the unknown-key check; read it element by element.
    cfg.MarkRead(groups);
    const size_t n = cfg.ArraySize(groups);
    if (n == 0) return InvalidArgumentError(cfg.source() + ": key '" + groups + "' must be a non-empty array of arrays of field names");
    for (size_t g = 0; g < n; ++g) {
      std::vector<std::string> names;
      ADREC_RETURN_IF_ERROR(cfg.Get(groups + "[" + std::to_string(g) + "]", &names));
      if (names.empty()) return InvalidArgumentError(cfg.source() + ": key '" + groups + "': group " + std::to_string(g) + " is empty");
      o.groups.push_back(std::move(names));
    }
    if (cfg.Has(OptionKey(section, "num_experts")) && o.num_experts != static_cast<int64_t>(n)) {
      return InvalidArgumentError(cfg.source() + ": key '" + OptionKey(section, "num_experts") + "' is " +
                                  std::to_string(o.num_experts) + " but '" + groups + "' has " + std::to_string(n) + " groups");
    }
    o.num_experts = static_cast<int64_t>(n);
  }
  ADREC_RETURN_IF_ERROR(ReadMlpOptions(cfg, section, "expert_hidden", &o.expert));
  ADREC_RETURN_IF_ERROR(ReadMlpOptions(cfg, section, "tower_hidden", &o.tower));
  return o;
}

std::vector<std::string> SplitMoeFieldNames(const ModelShape& shape) {
  std::vector<std::string> names;
  for (size_t i = 0; i < shape.sparse_dims.size(); ++i) {
    names.push_back(i < shape.sparse_names.size() ? shape.sparse_names[i] : "sparse" + std::to_string(i));
  }
  if (shape.dense_width > 0) names.push_back("dense");
  for (size_t i = 0; i < shape.text_dims.size(); ++i) names.push_back("text" + std::to_string(i));
  return names;
}

std::vector<std::vector<int>> RoundRobinGroups(const std::vector<double>& importance, int64_t groups) {
  std::vector<int> order(importance.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return importance[a] > importance[b]; });
  std::vector<std::vector<int>> out(static_cast<size_t>(groups));
  for (size_t i = 0; i < order.size(); ++i) out[i % out.size()].push_back(order[i]);
  for (auto& g : out) std::sort(g.begin(), g.end());
  return out;
}

StatusOr<std::shared_ptr<SplitMoeModel>> SplitMoeModel::Create(const ModelShape& shape, const SplitMoeOptions& options,
                                                               std::string_view section) {
  const std::vector<std::string> names = SplitMoeFieldNames(shape);
  if (names.empty()) return InvalidArgumentError("split_moe: the feature spec has no fields");
  std::vector<std::vector<int>> groups;
  if (options.groups.empty()) {
    std::vector<double> importance(names.size());
    // Field order as the default importance: the first fields spread over the experts first.
    for (size_t i = 0; i < names.size(); ++i) importance[i] = -static_cast<double>(i);
    groups = RoundRobinGroups(importance, std::min<int64_t>(options.num_experts, static_cast<int64_t>(names.size())));
  } else {
    const std::string key = OptionKey(section, "groups");
    std::map<std::string, int> index;
    for (size_t i = 0; i < names.size(); ++i) {
      if (!index.emplace(names[i], static_cast<int>(i)).second) {
        return InvalidArgumentError("split_moe: field name '" + names[i] + "' is used twice; '" + key + "' cannot name it");
      }
    }
    std::vector<int> owner(names.size(), -1);
    for (size_t g = 0; g < options.groups.size(); ++g) {
      std::vector<int> group;
      for (const std::string& name : options.groups[g]) {
        auto it = index.find(name);
        if (it == index.end()) {
          std::string known;
          for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
          return InvalidArgumentError("key '" + key + "': unknown field '" + name + "' (fields: " + known + ")");
        }
        if (owner[it->second] >= 0) {
          return InvalidArgumentError("key '" + key + "': field '" + name + "' is in groups " + std::to_string(owner[it->second]) +
                                      " and " + std::to_string(g));
        }
        owner[it->second] = static_cast<int>(g);
        group.push_back(it->second);
      }
      std::sort(group.begin(), group.end());
      groups.push_back(std::move(group));
    }
    for (size_t i = 0; i < names.size(); ++i) {
      if (owner[i] < 0) return InvalidArgumentError("key '" + key + "': field '" + names[i] + "' is in no group");
    }
  }
  return std::shared_ptr<SplitMoeModel>(new SplitMoeModel(shape, options, std::move(groups)));
}

SplitMoeModel::SplitMoeModel(const ModelShape& shape, const SplitMoeOptions& options, std::vector<std::vector<int>> groups)
    : shape_(shape), options_(options), groups_(std::move(groups)) {
  for (int d : shape.sparse_dims) field_widths_.push_back(d);
  if (shape.dense_width > 0) field_widths_.push_back(shape.dense_width);
  for (int d : shape.text_dims) field_widths_.push_back(d);
  BuildExperts();
  int64_t width = 0;
  for (const auto& e : *experts_) width += e->as<MlpImpl>()->out_dim();
  auto towers = register_module("towers", torch::nn::ModuleList());
  for (size_t t = 0; t < shape.targets.size(); ++t) {
    towers_.emplace_back(width, options.tower);
    towers->push_back(towers_.back());
  }
}

void SplitMoeModel::BuildExperts() {
  torch::nn::ModuleList experts;
  for (const auto& group : groups_) {
    int64_t width = 0;
    for (int f : group) width += field_widths_[static_cast<size_t>(f)];
    experts->push_back(Mlp(width, options_.expert));
  }
  // Keep the experts on the device and dtype the model was moved to.
  if (experts_) {
    const torch::Tensor any = towers_.front()->parameters().front();
    experts->to(any.device(), any.scalar_type());
    experts_ = replace_module("experts", experts);
  } else {
    experts_ = register_module("experts", experts);
  }
  if (!is_training()) experts->eval();
}

Status SplitMoeModel::SetFieldImportance(const std::vector<double>& importance) {
  if (!options_.groups.empty()) return FailedPreconditionError("split_moe: model.groups fixes the field groups; importance cannot re-partition them");
  if (importance.size() != field_widths_.size()) {
    return InvalidArgumentError("split_moe: SetFieldImportance got " + std::to_string(importance.size()) + " scores for " +
                                std::to_string(field_widths_.size()) + " fields");
  }
  for (double v : importance) {
    if (!std::isfinite(v)) return InvalidArgumentError("split_moe: SetFieldImportance got a non-finite score");
  }
  groups_ = RoundRobinGroups(importance, static_cast<int64_t>(groups_.size()));
  BuildExperts();
  return Status::Ok();
}

torch::Tensor SplitMoeModel::forward(const embedding::ModelInput& input) {
  CheckInput(shape_, input, "split_moe");
  std::vector<torch::Tensor> fields(input.sparse.begin(), input.sparse.end());
  if (shape_.dense_width > 0) fields.push_back(input.dense);
  for (const auto& t : input.text) fields.push_back(t);
  std::vector<torch::Tensor> outs;
  for (size_t g = 0; g < groups_.size(); ++g) {
    std::vector<torch::Tensor> parts;
    for (int f : groups_[g]) parts.push_back(fields[static_cast<size_t>(f)]);
    outs.push_back(experts_[g]->as<MlpImpl>()->forward(torch::cat(parts, 1)));
  }
  torch::Tensor h = torch::cat(outs, 1);
  std::vector<torch::Tensor> logits;
  for (auto& tower : towers_) logits.push_back(tower->forward(h));
  return torch::cat(logits, 1);
}

}  // namespace adrec::models
