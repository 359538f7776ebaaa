// What the S3-Rec family of models (FMLP-Rec, BSARec, WEARec: bsarec.h, wearec.h) share. Their
// filters see the whole window, so rows run left-aligned in a window of max_len (the newest item
// at max_len − 1, positions counting from the window's start) and every row and batch sees the
// same window; the models' input and output stay right-padded as every sequence model's. Their
// layers: layer norms with eps 1e-12, linear weights N(0, 0.02) and zero biases, and the
// post-norm feed-forward LN(h + dropout(W_2 · GELU(W_1 · h))).
#pragma once

#include <string_view>

#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "adrec/models/sequence_model.h"

namespace adrec::models {

struct LeftWindow {
  torch::Tensor items;    // [B, W] int64: slot p holds item p − (W − n) of a row of n items, else 0
  torch::Tensor real;     // [B, W] bool: slots that hold an item
  torch::Tensor lengths;  // [B, 1] int64: n
};

// Right-padded items [B, L] (L ≤ W) into the window.
LeftWindow LeftAlign(const torch::Tensor& items, int64_t window);

// The newest slot's states [B, d] at each row's last real position of a right-padded [B, L, d]
// (position 0 for an empty row), zeros elsewhere: what the models return when their last block
// runs at the newest slot only, the one slot anything reads.
torch::Tensor NewestAtLastPosition(const torch::Tensor& newest, const LeftWindow& window, int64_t length);

// The embedding front: "item_emb" (N(0, 0.02), the padding row zero), "pos_emb" (N(0, 0.02),
// one per window slot) and "emb_norm", registered on the model that owns them.
struct FamilyFront {
  FamilyFront() = default;
  FamilyFront(torch::nn::Module& owner, const SequenceShape& shape, int64_t dim);
  // Checks the input for model `kind`, fills `window` (max_len slots) and returns
  // dropout(LN(item + position)) of its slots, [B, W, dim].
  torch::Tensor Embed(const SequenceInput& input, std::string_view kind, double dropout, bool train,
                      LeftWindow* window);

  torch::nn::Embedding items{nullptr}, positions{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};

// model.alpha, the weight of one view against the other: InvalidArgument naming it outside [0, 1].
Status ReadMixWeight(Config& cfg, std::string_view section, double* alpha);

torch::nn::LayerNorm FamilyNorm(int64_t dim);
torch::nn::Linear FamilyDense(int64_t in, int64_t out);

// LN(h + dropout(ffn2(GELU(ffn1(h))))).
torch::Tensor FamilyFeedForward(const torch::Tensor& h, torch::nn::Linear& ffn1, torch::nn::Linear& ffn2,
                                torch::nn::LayerNorm& norm, double dropout, bool train);

}  // namespace adrec::models
