#include "adrec/models/hstu_ranker.h"

#include <torch/torch.h>

#include "adrec/core/config.h"

namespace adrec::models {

StatusOr<HstuRankerOptions> ReadHstuRankerOptions(Config& cfg, std::string_view section) {
  HstuRankerOptions o;
  ADREC_ASSIGN_OR_RETURN(o.hstu, ReadHstuOptions(cfg, section));
  ADREC_RETURN_IF_ERROR(ReadMlpOptions(cfg, section, "head_hidden", &o.head));
  ADREC_RETURN_IF_ERROR(cfg.Get(OptionKey(section, "item_features"), &o.item_features));
  ADREC_RETURN_IF_ERROR(cfg.Get(OptionKey(section, "user_features"), &o.user_features));
  return o;
}

HstuRankerImpl::HstuRankerImpl(const HstuRankerShape& shape, const HstuRankerOptions& options)
    : shape_(shape), options_(options) {
  const int64_t dim = options.hstu.base.dim;
  encoder_ = register_module("encoder", std::make_shared<HstuModel>(SequenceShape{shape.num_items, shape.max_len},
                                                                    options.hstu));
  action_emb_ = register_module("action_emb", torch::nn::Embedding(torch::nn::EmbeddingOptions(kNumActionTokens + 1, dim).padding_idx(0)));
  scene_emb_ = register_module("scene_emb", torch::nn::Embedding(torch::nn::EmbeddingOptions(shape.num_scenes + 1, dim).padding_idx(0)));
  slot_emb_ = register_module("slot_emb", torch::nn::Embedding(torch::nn::EmbeddingOptions(kNumSlotTokens + 1, dim).padding_idx(0)));
  hour_emb_ = register_module("hour_emb", torch::nn::Embedding(torch::nn::EmbeddingOptions(kNumHourTokens + 1, dim).padding_idx(0)));
  for (auto* e : {&action_emb_, &scene_emb_, &slot_emb_, &hour_emb_}) {
    torch::NoGradGuard no_grad;
    (*e)->weight.normal_(0, 0.02);
    (*e)->weight[0].zero_();
  }
  start_ = register_parameter("start", torch::zeros({dim}));
  auto attribute_tables = [&](const std::string& name, const std::string& module, const torch::Tensor& codes,
                              const std::vector<int64_t>& sizes, int64_t rows, torch::Tensor* buffer,
                              std::vector<torch::nn::Embedding>* tables) {
    if (sizes.empty()) return;
    TORCH_CHECK(codes.dim() == 2 && codes.size(0) == rows && codes.size(1) == static_cast<int64_t>(sizes.size()),
                "hstu_ranker: ", name, " codes must be [", rows, ", ", sizes.size(), "]");
    *buffer = register_buffer(name + "_codes", codes.to(torch::kInt64).clone());
    auto list = register_module(module, torch::nn::ModuleList());
    for (int64_t size : sizes) {
      tables->push_back(torch::nn::Embedding(size, dim));
      torch::NoGradGuard no_grad;
      tables->back()->weight.normal_(0, 0.02);
      list->push_back(tables->back());
    }
  };
  attribute_tables("item", "attributes", shape.item_codes, shape.item_feature_sizes, shape.num_items + 1, &item_codes_, &attribute_emb_);
  attribute_tables("user", "user_attributes", shape.user_codes, shape.user_feature_sizes, shape.user_codes.defined() ? shape.user_codes.size(0) : 0,
                   &user_codes_, &user_attribute_emb_);
  head_ = register_module("head", Mlp(4 * dim, options.head));
  out_ = register_module("out", torch::nn::Linear(head_->out_dim(), shape.targets));
}

torch::Tensor HstuRankerImpl::Attributes(const torch::Tensor& codes, std::vector<torch::nn::Embedding>& tables,
                                         const torch::Tensor& ids) {
  if (tables.empty()) return {};
  torch::Tensor rows = codes.index_select(0, ids.reshape(-1));
  torch::Tensor sum = tables[0]->forward(rows.select(1, 0));
  for (size_t f = 1; f < tables.size(); ++f) sum = sum + tables[f]->forward(rows.select(1, static_cast<int64_t>(f)));
  std::vector<int64_t> shape = ids.sizes().vec();
  shape.push_back(sum.size(-1));
  return sum.view(shape);
}

torch::Tensor HstuRankerImpl::EncodeHistory(const EventTokens& t) {
  const double scale = std::sqrt(static_cast<double>(options_.hstu.base.dim));
  // Actions, scenes and item attributes join the item at the scale the encoder gives items.
  torch::Tensor extra = action_emb_->forward(t.actions) + Context({t.scenes, t.slots, t.hours, {}});
  if (torch::Tensor a = Attributes(item_codes_, attribute_emb_, t.items); a.defined()) extra = extra + a;
  if (torch::Tensor u = Attributes(user_codes_, user_attribute_emb_, t.users); u.defined()) extra = extra + u.unsqueeze(1);
  extra = extra * scale;
  return encoder_->Encode({t.items, t.times, extra});
}

torch::Tensor HstuRankerImpl::StatesBefore(const torch::Tensor& states) {
  const int64_t B = states.size(0), L = states.size(1);
  torch::Tensor first = start_.to(states.scalar_type()).view({1, 1, -1}).expand({B, 1, states.size(2)});
  return torch::cat({first, states.narrow(1, 0, L - 1)}, 1);
}

torch::Tensor HstuRankerImpl::Context(const RequestContext& c) {
  torch::Tensor sum = scene_emb_->forward(c.scenes) + slot_emb_->forward(c.slots) + hour_emb_->forward(c.hours);
  if (c.users.defined()) {
    if (torch::Tensor u = Attributes(user_codes_, user_attribute_emb_, c.users); u.defined()) sum = sum + u;
  }
  return sum;
}

torch::Tensor HstuRankerImpl::Score(const torch::Tensor& states, const torch::Tensor& items, const RequestContext& c) {
  torch::Tensor e = encoder_->ItemTable().index_select(0, items);
  if (torch::Tensor a = Attributes(item_codes_, attribute_emb_, items); a.defined()) e = e + a;
  torch::Tensor s = Context(c);
  torch::Tensor h = states.dim() == 1 ? states.unsqueeze(0).expand({items.size(0), -1}) : states;
  return out_->forward(head_->forward(torch::cat({h, e, s, h * e}, -1)));
}

torch::Tensor HstuRankerImpl::forward(const EventTokens& t) {
  torch::Tensor before = StatesBefore(EncodeHistory(t));
  const int64_t B = before.size(0), L = before.size(1);
  torch::Tensor users = t.users.defined() ? t.users.view({B, 1}).expand({B, L}).reshape(-1) : torch::Tensor();
  torch::Tensor logits = Score(before.reshape({B * L, -1}), t.items.reshape(-1),
                               {t.scenes.reshape(-1), t.slots.reshape(-1), t.hours.reshape(-1), users});
  return logits.view({B, L, -1});
}

}  // namespace adrec::models
