// DCN-V2's cross network on the CPU as one autograd node. Autograd's own backward of
// x + x0 ⊙ (W x + b) makes seven passes over [B, D] per layer (addcmul's backward scales both
// factors by its value before multiplying, then the x and x0 gradients are summed apart); this
// node makes one fused pass per layer (x0's and h's gradients, the bias sum) and folds the x path
// into the GEMM's accumulation. Same function and gradients as CrossNetV2's layer-by-layer
// forward (layers_test.cc compares them).
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace adrec::models {

// The parameters of one cross layer, unpadded: full rank w [D, D], or low rank u, v [D, r]; b [D].
struct CrossWeights {
  at::Tensor w, u, v, b;
};

// Whether FusedCrossNet takes x0: a 2-D float32 CPU tensor, with every weight float32 on the CPU.
bool FusedCrossApplies(const at::Tensor& x0, const std::vector<CrossWeights>& layers);

// x_L of x_{l+1} = x0 ⊙ (W_l x_l + b_l) + x_l, x_0 = x0 [B, P], P ≥ D (columns past D zero, as
// AlignedWidth pads them; the weights are padded with zeros to match). Records one autograd node
// when grad mode is on and x0 or a weight requires grad.
at::Tensor FusedCrossNet(const at::Tensor& x0, const std::vector<CrossWeights>& layers);

}  // namespace adrec::models
