#include "adrec/models/hstu_ranker.h"

#include <torch/torch.h>

#include "adrec/core/config.h"

namespace adrec::models {

StatusOr<HstuRankerOptions> ReadHstuRankerOptions(Config& cfg, std::string_view section) {
  HstuRankerOptions o;
  ADREC_ASSIGN_OR_RETURN(o.hstu, ReadHstuOptions(cfg, section));
  ADREC_RETURN_IF_ERROR(ReadMlpOptions(cfg, section, "head_hidden", &o.head));
  ADREC_RETURN_IF_ERROR(cfg.Get(OptionKey(section, "item_features"), &o.item_features));
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
  TORCH_CHECK(shape.item_feature_sizes.empty() ||
                  (shape.item_codes.dim() == 2 && shape.item_codes.size(0) == shape.num_items + 1 &&
                   shape.item_codes.size(1) == static_cast<int64_t>(shape.item_feature_sizes.size())),
              "hstu_ranker: item_codes must be [num_items + 1, attributes]");
  if (!shape.item_feature_sizes.empty()) {
    item_codes_ = register_buffer("item_codes", shape.item_codes.to(torch::kInt64).clone());
    auto list = register_module("attributes", torch::nn::ModuleList());
    for (int64_t size : shape.item_feature_sizes) {
      attribute_emb_.push_back(torch::nn::Embedding(size, dim));
      torch::NoGradGuard no_grad;
      attribute_emb_.back()->weight.normal_(0, 0.02);
      list->push_back(attribute_emb_.back());
    }
  }
  head_ = register_module("head", Mlp(4 * dim, options.head));
  out_ = register_module("out", torch::nn::Linear(head_->out_dim(), shape.targets));
}

torch::Tensor HstuRankerImpl::ItemAttributes(const torch::Tensor& items) {
  if (attribute_emb_.empty()) return {};
  torch::Tensor codes = item_codes_.index_select(0, items.reshape(-1));
  torch::Tensor sum = attribute_emb_[0]->forward(codes.select(1, 0));
  for (size_t f = 1; f < attribute_emb_.size(); ++f) sum = sum + attribute_emb_[f]->forward(codes.select(1, static_cast<int64_t>(f)));
  std::vector<int64_t> shape = items.sizes().vec();
  shape.push_back(sum.size(-1));
  return sum.view(shape);
}

torch::Tensor HstuRankerImpl::EncodeHistory(const EventTokens& t) {
  const double scale = std::sqrt(static_cast<double>(options_.hstu.base.dim));
  // Actions, scenes and item attributes join the item at the scale the encoder gives items.
  torch::Tensor extra = action_emb_->forward(t.actions) + Context(t.scenes, t.slots, t.hours);
  if (torch::Tensor a = ItemAttributes(t.items); a.defined()) extra = extra + a;
  extra = extra * scale;
  return encoder_->Encode({t.items, t.times, extra});
}

torch::Tensor HstuRankerImpl::StatesBefore(const torch::Tensor& states) {
  const int64_t B = states.size(0), L = states.size(1);
  torch::Tensor first = start_.to(states.scalar_type()).view({1, 1, -1}).expand({B, 1, states.size(2)});
  return torch::cat({first, states.narrow(1, 0, L - 1)}, 1);
}

torch::Tensor HstuRankerImpl::Context(const torch::Tensor& scenes, const torch::Tensor& slots, const torch::Tensor& hours) {
  return scene_emb_->forward(scenes) + slot_emb_->forward(slots) + hour_emb_->forward(hours);
}

torch::Tensor HstuRankerImpl::Score(const torch::Tensor& states, const torch::Tensor& items, const RequestContext& c) {
  torch::Tensor e = encoder_->ItemTable().index_select(0, items);
  if (torch::Tensor a = ItemAttributes(items); a.defined()) e = e + a;
  torch::Tensor s = Context(c.scenes, c.slots, c.hours);
  torch::Tensor h = states.dim() == 1 ? states.unsqueeze(0).expand({items.size(0), -1}) : states;
  return out_->forward(head_->forward(torch::cat({h, e, s, h * e}, -1)));
}

torch::Tensor HstuRankerImpl::forward(const EventTokens& t) {
  torch::Tensor before = StatesBefore(EncodeHistory(t));
  const int64_t B = before.size(0), L = before.size(1);
  torch::Tensor logits = Score(before.reshape({B * L, -1}), t.items.reshape(-1),
                               {t.scenes.reshape(-1), t.slots.reshape(-1), t.hours.reshape(-1)});
  return logits.view({B, L, -1});
}

}  // namespace adrec::models
