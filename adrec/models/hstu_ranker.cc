#include "adrec/models/hstu_ranker.h"

#include <torch/torch.h>

#include "adrec/core/config.h"

namespace adrec::models {

StatusOr<HstuRankerOptions> ReadHstuRankerOptions(Config& cfg, std::string_view section) {
  HstuRankerOptions o;
  ADREC_ASSIGN_OR_RETURN(o.hstu, ReadHstuOptions(cfg, section));
  ADREC_RETURN_IF_ERROR(ReadMlpOptions(cfg, section, "head_hidden", &o.head));
  return o;
}

HstuRankerImpl::HstuRankerImpl(const HstuRankerShape& shape, const HstuRankerOptions& options)
    : shape_(shape), options_(options) {
  const int64_t dim = options.hstu.base.dim;
  encoder_ = register_module("encoder", std::make_shared<HstuModel>(SequenceShape{shape.num_items, shape.max_len},
                                                                    options.hstu));
  action_emb_ = register_module("action_emb", torch::nn::Embedding(torch::nn::EmbeddingOptions(kNumActionTokens + 1, dim).padding_idx(0)));
  scene_emb_ = register_module("scene_emb", torch::nn::Embedding(torch::nn::EmbeddingOptions(shape.num_scenes + 1, dim).padding_idx(0)));
  {
    torch::NoGradGuard no_grad;
    action_emb_->weight.normal_(0, 0.02);
    action_emb_->weight[0].zero_();
    scene_emb_->weight.normal_(0, 0.02);
    scene_emb_->weight[0].zero_();
  }
  start_ = register_parameter("start", torch::zeros({dim}));
  head_ = register_module("head", Mlp(4 * dim, options.head));
  out_ = register_module("out", torch::nn::Linear(head_->out_dim(), shape.targets));
}

torch::Tensor HstuRankerImpl::EncodeHistory(const EventTokens& t) {
  const double scale = std::sqrt(static_cast<double>(options_.hstu.base.dim));
  // Actions and scenes join the item at the embedding scale the encoder gives items.
  torch::Tensor extra = (action_emb_->forward(t.actions) + scene_emb_->forward(t.scenes)) * scale;
  return encoder_->Encode({t.items, t.times, extra});
}

torch::Tensor HstuRankerImpl::StatesBefore(const torch::Tensor& states) {
  const int64_t B = states.size(0), L = states.size(1);
  torch::Tensor first = start_.to(states.scalar_type()).view({1, 1, -1}).expand({B, 1, states.size(2)});
  return torch::cat({first, states.narrow(1, 0, L - 1)}, 1);
}

torch::Tensor HstuRankerImpl::Score(const torch::Tensor& states, const torch::Tensor& items, const torch::Tensor& scenes) {
  torch::Tensor e = encoder_->ItemTable().index_select(0, items);
  torch::Tensor s = scene_emb_->weight.index_select(0, scenes);
  torch::Tensor h = states.dim() == 1 ? states.unsqueeze(0).expand({items.size(0), -1}) : states;
  return out_->forward(head_->forward(torch::cat({h, e, s, h * e}, -1)));
}

torch::Tensor HstuRankerImpl::forward(const EventTokens& t) {
  torch::Tensor before = StatesBefore(EncodeHistory(t));
  const int64_t B = before.size(0), L = before.size(1);
  torch::Tensor logits = Score(before.reshape({B * L, -1}), t.items.reshape(-1), t.scenes.reshape(-1));
  return logits.view({B, L, -1});
}

}  // namespace adrec::models
