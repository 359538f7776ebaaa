// Per-sample gradient norms of the dense layers from their activations (the "ghost norm" of
// Goodfellow 2015 and Li et al. 2022): for y = x Wᵀ + b, sample i's gradient of W is gᵢ xᵢᵀ, so
// its squared norm is ‖gᵢ‖²‖xᵢ‖² without forming it. While a PerSampleTape is active on the
// thread, the ranking models' layers record their inputs and outputs into it; DP-SGD
// (train/dp_sgd.h) then asks autograd for the outputs' gradients and gets every sample's norm
// in one extra backward pass.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <torch/types.h>

namespace torch::nn {
class LinearImpl;
}

namespace adrec::models {

class PerSampleTape {
 public:
  PerSampleTape();  // active on this thread until destroyed
  ~PerSampleTape();
  PerSampleTape(const PerSampleTape&) = delete;
  PerSampleTape& operator=(const PerSampleTape&) = delete;
  static PerSampleTape* Current();

  // y = x Wᵀ (+ b) with x [B, in] or [B, T, in]; `params` are the parameters behind W and b
  // (a padded or transposed copy still counts as its parameter).
  void Linear(const torch::Tensor& x, const torch::Tensor& y, bool bias, std::vector<torch::Tensor> params);
  // y [B, d] = table[index]: one row of `table` per sample.
  void Rows(const torch::Tensor& y, const torch::Tensor& table);

  // The recorded outputs, whose gradients SquaredNorms takes in the same order.
  std::vector<torch::Tensor> outputs() const;
  // Float [B]: each sample's squared gradient norm over every recorded parameter.
  torch::Tensor SquaredNorms(const std::vector<torch::Tensor>& output_grads) const;
  // Every recorded parameter (its TensorImpl), and the names of those recorded twice (their
  // per-sample parts would add before squaring, which the sum of norms does not see).
  std::set<const void*> covered() const;
  std::vector<const void*> repeated() const;
  void Clear() { records_.clear(); }

 private:
  struct Record {
    torch::Tensor x, y;  // x undefined for Rows
    bool bias = false;
    std::vector<torch::Tensor> params;
  };
  std::vector<Record> records_;
  PerSampleTape* previous_ = nullptr;
};

// linear->forward(x), recorded on the active tape.
torch::Tensor TapedLinear(torch::nn::LinearImpl& linear, const torch::Tensor& x);
// torch::linear(x, w, b) where w and b stand for `params`, recorded on the active tape.
torch::Tensor TapedLinear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                          std::vector<torch::Tensor> params);

}  // namespace adrec::models
