#include "adrec/models/two_tower.h"

#include <torch/torch.h>

#include <algorithm>

#include "adrec/core/config.h"

namespace adrec::models {
namespace {

bool ItemSource(const std::string& source) { return source == "item" || source.rfind("item.", 0) == 0; }

// Per field: on the item tower? By item_fields when given, else by source.
std::vector<bool> ItemSide(const std::vector<std::string>& names, const std::vector<std::string>& sources,
                           const std::vector<std::string>& item_fields, size_t n) {
  std::vector<bool> out(n, false);
  for (size_t i = 0; i < n; ++i) {
    if (!item_fields.empty()) {
      out[i] = i < names.size() && std::count(item_fields.begin(), item_fields.end(), names[i]) > 0;
    } else {
      out[i] = i < sources.size() && ItemSource(sources[i]);
    }
  }
  return out;
}

int64_t Width(const std::vector<int>& dims, const std::vector<bool>& item, bool side) {
  int64_t w = 0;
  for (size_t i = 0; i < dims.size(); ++i) w += item[i] == side ? dims[i] : 0;
  return w;
}

// Which fields feed which tower, and each tower's input width (dense fields: the query's).
struct TowerSplit {
  std::vector<bool> sparse_item, text_item;
  int64_t item_width = 0, query_width = 0;
};

TowerSplit SplitTowers(const ModelShape& shape, const TwoTowerOptions& options) {
  TowerSplit t;
  t.sparse_item = ItemSide(shape.sparse_names, shape.sparse_sources, options.item_fields, shape.sparse_dims.size());
  t.text_item = ItemSide(shape.text_names, shape.text_sources, options.item_fields, shape.text_dims.size());
  t.item_width = Width(shape.sparse_dims, t.sparse_item, true) + Width(shape.text_dims, t.text_item, true);
  t.query_width =
      Width(shape.sparse_dims, t.sparse_item, false) + Width(shape.text_dims, t.text_item, false) + shape.dense_width;
  return t;
}

}  // namespace

StatusOr<TwoTowerOptions> ReadTwoTowerOptions(Config& cfg, std::string_view section) {
  TwoTowerOptions o;
  ADREC_RETURN_IF_ERROR(ReadMlpOptions(cfg, section, "hidden", &o.mlp));
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "dim", 1, &o.dim));
  ADREC_RETURN_IF_ERROR(cfg.Get(OptionKey(section, "item_fields"), &o.item_fields));
  return o;
}

Status CheckTwoTowerShape(const ModelShape& shape, const TwoTowerOptions& options) {
  for (const std::string& f : options.item_fields) {
    const bool known = std::count(shape.sparse_names.begin(), shape.sparse_names.end(), f) > 0 ||
                       std::count(shape.text_names.begin(), shape.text_names.end(), f) > 0;
    if (!known) return InvalidArgumentError("two_tower: model.item_fields names '" + f + "', which is not a sparse or text field");
  }
  const TowerSplit split = SplitTowers(shape, options);
  if (split.item_width == 0) {
    return InvalidArgumentError("two_tower: no field feeds the item tower (fields of source item or item.<column>, or "
                                "model.item_fields)");
  }
  if (split.query_width == 0) return InvalidArgumentError("two_tower: no field feeds the query tower (user and context fields)");
  return Status::Ok();
}

TwoTowerModel::TwoTowerModel(const ModelShape& shape, const TwoTowerOptions& options) : shape_(shape), options_(options) {
  const TowerSplit split = SplitTowers(shape, options);
  sparse_item_ = split.sparse_item;
  text_item_ = split.text_item;
  const int64_t T = static_cast<int64_t>(shape.targets.size());
  query_ = register_module("query", Mlp(split.query_width, options.mlp));
  item_ = register_module("item", Mlp(split.item_width, options.mlp));
  query_out_ = register_module("query_out", torch::nn::Linear(query_->out_dim(), options.dim * T));
  item_out_ = register_module("item_out", torch::nn::Linear(item_->out_dim(), options.dim * T));
  out_ = register_module("out", std::make_shared<torch::nn::Module>());
  bias_ = out_->register_parameter("bias", torch::zeros({T}));
}

std::pair<torch::Tensor, torch::Tensor> TwoTowerModel::Vectors(const embedding::ModelInput& input) {
  CheckInput(shape_, input, "two_tower");
  std::vector<torch::Tensor> q, v;
  for (size_t i = 0; i < input.sparse.size(); ++i) (sparse_item_[i] ? v : q).push_back(input.sparse[i]);
  for (size_t i = 0; i < input.text.size(); ++i) (text_item_[i] ? v : q).push_back(input.text[i]);
  if (input.dense.defined() && input.dense.size(1) > 0) q.push_back(input.dense);
  const int64_t B = input.batch_size(), T = static_cast<int64_t>(shape_.targets.size());
  torch::Tensor qv = query_out_->forward(query_->forward(torch::cat(q, 1))).view({B, T, options_.dim});
  torch::Tensor iv = item_out_->forward(item_->forward(torch::cat(v, 1))).view({B, T, options_.dim});
  return {qv, iv};
}

torch::Tensor TwoTowerModel::forward(const embedding::ModelInput& input) {
  auto [q, v] = Vectors(input);
  return (q * v).sum(-1) + bias_;
}

torch::Tensor TwoTowerModel::represent(const embedding::ModelInput& input) {
  auto [q, v] = Vectors(input);
  return torch::cat({q.flatten(1), v.flatten(1)}, 1);
}

torch::Tensor TwoTowerModel::ItemVectors(const embedding::ModelInput& input) { return Vectors(input).second; }
torch::Tensor TwoTowerModel::QueryVectors(const embedding::ModelInput& input) { return Vectors(input).first; }

}  // namespace adrec::models
