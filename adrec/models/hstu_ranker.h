// HSTU as an ad ranker (Zhai et al. 2024, section 2: "ranking" as sequential transduction). One
// sample is a user's whole log: every event (impression, click, download, conversion …) is a
// token — item embedding + action embedding + scene embedding, HSTU's time-bucket bias — and
// one causal pass predicts every impression's outcomes. Impression p is scored from the state
// after token p − 1 (everything that happened before it, its own click never) and the candidate
// (its item and scene) through a light head:
//   logits = out(MLP([h, e_item, e_context, h ⊙ e_item]))   one logit per target
// (e_context: scene + feed slot + hour of day embeddings).
// Serving splits the two: EncodeHistory once per request (cacheable), Score per candidate.
// Parameters: "encoder.*" (an HstuModel: item table, positions, blocks), "action_emb.weight",
// "scene_emb.weight", "slot_emb.weight", "hour_emb.weight", "attributes.<f>.weight",
// "user_attributes.<g>.weight", "start" [dim] (the state before the first event), "head.*",
// "out.*"; buffers "item_codes", "user_codes".
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
  // Categorical item attributes (taxonomy, advertiser): codes [num_items + 1, F] int64 (row 0
  // for padding) and each attribute's vocabulary size. Their embeddings join the item's, in the
  // tokens and for candidates, so rare items borrow what their category has learned.
  torch::Tensor item_codes;
  std::vector<int64_t> item_feature_sizes;
  // The same for the user's profile (age, gender, region, device): codes [num_users, G]. Its
  // embeddings join every token and the request context.
  torch::Tensor user_codes;
  std::vector<int64_t> user_feature_sizes;
};

struct HstuRankerOptions {
  HstuOptions hstu;         // [model] dim, blocks, heads, dropout, attention_dim, linear_dim, time_buckets
  MlpOptions head{{64}};    // [model] head_hidden
  std::vector<std::string> item_features;  // [model] item_features: item-table columns
  std::vector<std::string> user_features;  // [model] user_features: user-table columns
};
StatusOr<HstuRankerOptions> ReadHstuRankerOptions(Config& cfg, std::string_view section);

// Tokens of a batch of windows, right-padded: items 1-based (0 = padding), actions, scenes,
// feed slots and hours of the day 1-based too (Action + 1, scene + 1, slot + 1, hour + 1), times
// unix seconds. Scene, slot and hour are also the request context a candidate is scored in.
struct EventTokens {
  torch::Tensor items, actions, scenes, slots, hours, times;  // [B, L] int64
  torch::Tensor users = {};  // [B] int64, 0-based dataset users (read only with user_features)
};

// The context of a request, per candidate (1-based like the tokens): [N] int64 each; users
// 0-based, read only with user_features.
struct RequestContext {
  torch::Tensor scenes, slots, hours;
  torch::Tensor users = {};
};

inline constexpr int64_t kNumSlotTokens = 256;  // EventColumns::position is a u8
inline constexpr int64_t kNumHourTokens = 24;

inline constexpr int64_t kNumActionTokens = 16;  // data::Action values, with room to grow

class HstuRankerImpl : public torch::nn::Module {
 public:
  HstuRankerImpl(const HstuRankerShape& shape, const HstuRankerOptions& options);
  // States after each token [B, L, dim].
  torch::Tensor EncodeHistory(const EventTokens& tokens);
  // The state each position is scored from: the one after the previous token, `start` at 0.
  torch::Tensor StatesBefore(const torch::Tensor& states);
  // The light head: states [N, dim] (or [dim] broadcast), candidate items [N] (1-based) in
  // their request context → logits [N, targets].
  torch::Tensor Score(const torch::Tensor& states, const torch::Tensor& items, const RequestContext& context);
  // Every position scored against its own item and scene: [B, L, targets] (meaningful at
  // impressions).
  torch::Tensor forward(const EventTokens& tokens);
  const HstuRankerShape& shape() const { return shape_; }

 private:
  // Sum of the attribute embeddings of `ids` (rows of `codes`) [.., dim]; undefined without.
  static torch::Tensor Attributes(const torch::Tensor& codes, std::vector<torch::nn::Embedding>& tables,
                                  const torch::Tensor& ids);

  HstuRankerShape shape_;
  HstuRankerOptions options_;
  std::shared_ptr<HstuModel> encoder_;
  torch::Tensor Context(const RequestContext& c);
  torch::nn::Embedding action_emb_{nullptr}, scene_emb_{nullptr}, slot_emb_{nullptr}, hour_emb_{nullptr};
  torch::Tensor start_, item_codes_, user_codes_;
  std::vector<torch::nn::Embedding> attribute_emb_, user_attribute_emb_;
  Mlp head_{nullptr};
  torch::nn::Linear out_{nullptr};
};
TORCH_MODULE(HstuRanker);

}  // namespace adrec::models
