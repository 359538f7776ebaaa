// What the S3-Rec family of models (FMLP-Rec, BSARec, WEARec: bsarec.h, wearec.h) share. Their
// filters see the whole window, so rows run left-aligned in a window of max_len (the newest item
// at max_len − 1, positions counting from the window's start) and every row and batch sees the
// same window; the models' input and output stay right-padded as every sequence model's. Their
// layers: layer norms with eps 1e-12, linear weights N(0, 0.02) and zero biases, and the
// post-norm feed-forward LN(h + dropout(W_2 · GELU(W_1 · h))).
#pragma once

#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

namespace adrec::models {

struct LeftWindow {
  torch::Tensor items;    // [B, W] int64: slot p holds item p − (W − n) of a row of n items, else 0
  torch::Tensor real;     // [B, W] bool: slots that hold an item
  torch::Tensor lengths;  // [B, 1] int64: n
};

// Right-padded items [B, L] (L ≤ W) into the window.
LeftWindow LeftAlign(const torch::Tensor& items, int64_t window);

// States [B, W, d] of the window back at the input's right-padded positions [B, L, d].
torch::Tensor RightAlignBack(const torch::Tensor& states, const LeftWindow& window, int64_t length);

// Items and positions N(0, 0.02), the padding row zero.
void FamilyInitEmbeddings(torch::Tensor item_table, torch::Tensor positions);

// dropout(LN(item + position)) of the window's slots, [B, W, d].
torch::Tensor FamilyEmbed(const LeftWindow& window, torch::nn::Embedding& items, torch::nn::Embedding& positions,
                          torch::nn::LayerNorm& norm, double dropout, bool train);

torch::nn::LayerNorm FamilyNorm(int64_t dim);
torch::nn::Linear FamilyDense(int64_t in, int64_t out);

// LN(h + dropout(ffn2(GELU(ffn1(h))))).
torch::Tensor FamilyFeedForward(const torch::Tensor& h, torch::nn::Linear& ffn1, torch::nn::Linear& ffn2,
                                torch::nn::LayerNorm& norm, double dropout, bool train);

}  // namespace adrec::models
