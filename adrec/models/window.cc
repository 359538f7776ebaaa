#include "adrec/models/window.h"

#include <torch/torch.h>

#include "adrec/core/config.h"
#include "adrec/models/layers.h"

namespace adrec::models {

namespace {
constexpr double kNormEps = 1e-12;  // the S3-Rec family's layer norms
constexpr double kInitStd = 0.02;
}  // namespace

LeftWindow LeftAlign(const torch::Tensor& items, int64_t window) {
  const int64_t B = items.size(0), L = items.size(1), W = window;
  LeftWindow w;
  w.lengths = items.ne(0).sum(1, /*keepdim=*/true);
  torch::Tensor slot = torch::arange(W, items.options()).unsqueeze(0).expand({B, W});
  torch::Tensor src = slot - (W - w.lengths);
  w.real = src.ge(0);
  w.items = items.gather(1, src.clamp(0, L - 1)) * w.real;
  return w;
}

torch::Tensor NewestAtLastPosition(const torch::Tensor& newest, const LeftWindow& window, int64_t length) {
  const int64_t B = newest.size(0), d = newest.size(1);
  torch::Tensor last = (window.lengths - 1).clamp_min(0).unsqueeze(-1).expand({B, 1, d});  // [B, 1, d]
  return torch::zeros({B, length, d}, newest.options()).scatter(1, last, newest.unsqueeze(1));
}

FamilyFront::FamilyFront(torch::nn::Module& owner, const SequenceShape& shape, int64_t dim) {
  items = owner.register_module("item_emb", torch::nn::Embedding(torch::nn::EmbeddingOptions(shape.num_items + 1, dim).padding_idx(0)));
  positions = owner.register_module("pos_emb", torch::nn::Embedding(shape.max_len, dim));
  norm = owner.register_module("emb_norm", FamilyNorm(dim));
  torch::NoGradGuard no_grad;
  items->weight.normal_(0, kInitStd);
  items->weight[0].zero_();
  positions->weight.normal_(0, kInitStd);
}

torch::Tensor FamilyFront::Embed(const SequenceInput& input, std::string_view kind, double dropout, bool train,
                                 LeftWindow* window) {
  const torch::Tensor& ids = input.items;
  const int64_t W = positions->weight.size(0);
  TORCH_CHECK(ids.dim() == 2 && ids.size(1) <= W, kind, ": items are ", ids.sizes(), ", want [B, L] with L <= max_len ", W);
  TORCH_CHECK(!input.extra.defined(), kind, ": extra input embeddings are not supported");
  *window = LeftAlign(ids, W);
  torch::Tensor x = items->forward(window->items) + positions->forward(torch::arange(W, ids.options()));
  return Dropout(norm->forward(x), dropout, train);
}

Status ReadMixWeight(Config& cfg, std::string_view section, double* alpha) {
  const std::string key = OptionKey(section, "alpha");
  ADREC_RETURN_IF_ERROR(cfg.Get(key, alpha));
  if (!(*alpha >= 0 && *alpha <= 1)) {
    return InvalidArgumentError(cfg.source() + ": key '" + key + "' must be in [0, 1], got " + std::to_string(*alpha));
  }
  return Status::Ok();
}

torch::nn::LayerNorm FamilyNorm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(kNormEps));
}

torch::nn::Linear FamilyDense(int64_t in, int64_t out) {
  torch::nn::Linear l(in, out);
  torch::NoGradGuard no_grad;
  l->weight.normal_(0, kInitStd);
  l->bias.zero_();
  return l;
}

torch::Tensor FamilyFeedForward(const torch::Tensor& h, torch::nn::Linear& ffn1, torch::nn::Linear& ffn2,
                                torch::nn::LayerNorm& norm, double dropout, bool train) {
  torch::Tensor f = ffn2->forward(torch::gelu(ffn1->forward(h)));
  return norm->forward(h + Dropout(f, dropout, train));
}

}  // namespace adrec::models
