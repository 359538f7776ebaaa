// HSTU as an ad ranker (Zhai et al. 2024, section 2: "ranking" as sequential transduction). One
// sample is a user's whole log: every event (impression, click, download, conversion …) is a
// token — item embedding + action embedding + scene embedding, HSTU's time-bucket bias — and
// one causal pass predicts every impression's outcomes. Impression p is scored from the state
// after token p − 1 (everything that happened before it, its own click never) and the candidate
// (its item and scene) through a light head:
//   logits = out(MLP([h, e_item, e_scene, h ⊙ e_item]))           one logit per target
// Serving splits the two: EncodeHistory once per request (cacheable), Score per candidate.
// Parameters: "encoder.*" (an HstuModel: item table, positions, blocks), "action_emb.weight",
// "scene_emb.weight", "start" [dim] (the state before the first event), "head.*", "out.*".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include "adrec/core/status.h"
#include "adrec/models/hstu.h"
#include "adrec/models/layers.h"

namespace adrec::models {

struct HstuRankerShape {
  int64_t num_items = 0;   // dataset items (table rows: + 1 for padding)
  int64_t num_scenes = 1;
  int64_t max_len = 256;   // events per window
  int64_t targets = 1;     // outputs per impression
};

struct HstuRankerOptions {
  HstuOptions hstu;         // [model] dim, blocks, heads, dropout, attention_dim, linear_dim, time_buckets
  MlpOptions head{{64}};    // [model] head_hidden
};
StatusOr<HstuRankerOptions> ReadHstuRankerOptions(Config& cfg, std::string_view section);

// Tokens of a batch of windows, right-padded: items 1-based (0 = padding), actions and scenes
// 1-based too (Action + 1, scene + 1), times unix seconds.
struct EventTokens {
  torch::Tensor items, actions, scenes, times;  // [B, L] int64
};

inline constexpr int64_t kNumActionTokens = 16;  // data::Action values, with room to grow

class HstuRankerImpl : public torch::nn::Module {
 public:
  HstuRankerImpl(const HstuRankerShape& shape, const HstuRankerOptions& options);
  // States after each token [B, L, dim].
  torch::Tensor EncodeHistory(const EventTokens& tokens);
  // The state each position is scored from: the one after the previous token, `start` at 0.
  torch::Tensor StatesBefore(const torch::Tensor& states);
  // The light head: states [N, dim] (or [dim] broadcast), candidate items/scenes [N] (1-based)
  // → logits [N, targets].
  torch::Tensor Score(const torch::Tensor& states, const torch::Tensor& items, const torch::Tensor& scenes);
  // Every position scored against its own item and scene: [B, L, targets] (meaningful at
  // impressions).
  torch::Tensor forward(const EventTokens& tokens);
  const HstuRankerShape& shape() const { return shape_; }

 private:
  HstuRankerShape shape_;
  HstuRankerOptions options_;
  std::shared_ptr<HstuModel> encoder_;
  torch::nn::Embedding action_emb_{nullptr}, scene_emb_{nullptr};
  torch::Tensor start_;
  Mlp head_{nullptr};
  torch::nn::Linear out_{nullptr};
};
TORCH_MODULE(HstuRanker);

}  // namespace adrec::models
