// bf16 autocast on CUDA around a forward pass, as every trainer and training benchmark runs it
// (train.bf16): the model's matmuls in bf16, the result back in f32 for the loss.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/types.h>

namespace adrec::train {

// Runs `forward` under CUDA bf16 autocast when `on`, else plainly; returns its output in f32
// when autocast ran.
template <typename Forward>
torch::Tensor MaybeAutocastBf16(bool on, Forward&& forward) {
  if (!on) return forward();
  at::autocast::set_autocast_enabled(at::kCUDA, true);
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  torch::Tensor out = forward().to(torch::kFloat32);
  at::autocast::set_autocast_enabled(at::kCUDA, false);
  at::autocast::clear_cache();
  return out;
}

}  // namespace adrec::train
