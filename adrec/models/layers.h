// Building blocks of the ranking models: MLP, the DCN-V2 cross network, the FM second-order
// interaction, mixture-of-experts helpers (MMoE/PLE/split experts), and the option readers every
// model shares. Parameter names are part of the bundle format (the trainer saves named_parameters
// into safetensors) and of the Python twins in bench/reference/ranking_models.py: keep them stable.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "adrec/core/status.h"
#include "adrec/embedding/input.h"
#include "adrec/models/fused_cross.h"

namespace adrec {
class Config;
}

namespace adrec::models {

struct ModelShape;

// ---- MLP -------------------------------------------------------------------------------------

struct MlpOptions {
  std::vector<int64_t> hidden;  // widths of the hidden layers; empty = identity
  std::string norm = "none";    // none | batch | layer (after each linear, before the ReLU)
  double dropout = 0.0;         // after each ReLU, training only
};

// A zero-padded copy of a weight (ZeroPadTo) kept between calls that record no gradient
// (inference): padding DCN-V2's 432×432 cross weights afresh per request was 17 % of its scoring
// time. Rebuilt when the weight changes: an optimiser step or a load moves its version counter,
// a device move its storage. Under autograd it pads afresh, as the gradient needs.
class PaddedCopy {
 public:
  torch::Tensor Get(const torch::Tensor& t, int64_t rows, int64_t cols = 0);

 private:
  std::mutex mu_;  // one model may serve several threads
  torch::Tensor source_, padded_;
  const void* data_ = nullptr;
  int64_t version_ = -1, rows_ = -1, cols_ = -1;
};

// Linear → [norm] → ReLU → [dropout] per hidden width. Parameters: "<i>.weight", "<i>.bias",
// and "norm.<i>.weight", "norm.<i>.bias" (+ batch-norm buffers) for layer i. `forward` also takes
// an input zero-padded past in_dim (an AlignedWidth one): the first weight is padded to match.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t in_dim, MlpOptions options);
  torch::Tensor forward(torch::Tensor x);
  int64_t in_dim() const { return in_dim_; }
  int64_t out_dim() const { return out_dim_; }

 private:
  MlpOptions options_;
  int64_t in_dim_ = 0;
  std::vector<torch::nn::Linear> linears_;
  torch::nn::ModuleList norms_{nullptr};
  int64_t out_dim_ = 0;
  PaddedCopy first_padded_;  // the first layer's weight on a padded input
};
TORCH_MODULE(Mlp);

// ---- DCN-V2 cross network (Wang et al. 2021, "DCN V2: Improved Deep & Cross Network") --------

// x_{l+1} = x0 ⊙ (W_l x_l + b_l) + x_l. Full rank: "w" [D, D]; low rank (W = U V^T, the
// paper's cost-saving form): "u" [D, r], "v" [D, r]; both: "b" [D]. x0 and x may be zero-padded
// past D (to AlignedWidth(D)): the weights are padded with zeros for the product, so the padded
// columns of the output stay zero and the function and gradients are those of the D-wide layer.
class CrossLayerImpl : public torch::nn::Module {
 public:
  CrossLayerImpl(int64_t dim, int64_t low_rank);
  torch::Tensor forward(const torch::Tensor& x0, const torch::Tensor& x);
  // The weights padded to p columns (rows) for a call that records no gradient, kept between
  // calls; the parameters themselves under autograd.
  CrossWeights Padded(int64_t p);
  torch::Tensor w, u, v, b;  // undefined where the variant has none

 private:
  int64_t dim_ = 0;
  PaddedCopy pw_, pu_, pv_, pb_;
};
TORCH_MODULE(CrossLayer);

// A stack of cross layers, registered "0", "1", … (so "cross.0.w" inside a model).
class CrossNetV2Impl : public torch::nn::Module {
 public:
  CrossNetV2Impl(int64_t dim, int64_t layers, int64_t low_rank);
  torch::Tensor forward(const torch::Tensor& x0);
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  CrossLayer& layer(int64_t i) { return layers_[static_cast<size_t>(i)]; }

 private:
  std::vector<CrossLayer> layers_;
};
TORCH_MODULE(CrossNetV2);

// ---- FM (Rendle 2010, "Factorization Machines") ----------------------------------------------

// Σ_{i<j} <v_i, v_j> over the fields of `fields` [B, F, k] in O(F·k):
// 0.5 · Σ_k ((Σ_f v)² − Σ_f v²). Returns [B, 1].
torch::Tensor FmInteraction(const torch::Tensor& fields);
// The same before the sum over k: Σ_{i<j} v_i ⊙ v_j, [B, k] (He & Chua 2017's bi-interaction
// pooling). FM heads weight it per target, so targets can use different interactions.
torch::Tensor FmBiInteraction(const torch::Tensor& fields);

// ---- Mixture of experts (MMoE, PLE, split experts) -------------------------------------------

// N experts (each an Mlp over the same input), registered "0".."N-1".
class ExpertsImpl : public torch::nn::Module {
 public:
  ExpertsImpl(int64_t num_experts, int64_t in_dim, const MlpOptions& options);
  // [B, N, H]: every expert's output.
  torch::Tensor forward(const torch::Tensor& x);
  int64_t size() const { return static_cast<int64_t>(experts_.size()); }
  int64_t out_dim() const { return out_dim_; }

 private:
  std::vector<Mlp> experts_;
  int64_t out_dim_ = 0;
};
TORCH_MODULE(Experts);

// Softmax gate weights [B, N] from a gate's linear layer.
torch::Tensor GateWeights(torch::nn::Linear& gate, const torch::Tensor& input);
// Σ_n weights[:, n] · experts[:, n, :] → [B, H].
torch::Tensor MixExperts(const torch::Tensor& weights, const torch::Tensor& experts);

// A task tower: Mlp ("mlp.*") and a linear to one logit ("out.*"). Returns [B, 1].
class TowerImpl : public torch::nn::Module {
 public:
  TowerImpl(int64_t in_dim, const MlpOptions& options);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  Mlp mlp_{nullptr};
  torch::nn::Linear out_{nullptr};
};
TORCH_MODULE(Tower);

// ---- Inputs ----------------------------------------------------------------------------------

// Width of ConcatFeatures: Σ sparse dims + dense width + Σ text dims.
int64_t FeatureWidth(const ModelShape& shape);
// GEMM operands whose width is a multiple of this run at full speed: MKL's fp32 AVX2 kernels
// take about 1.6× as long for a 4096×429 by 429×429 product as for 4096×432 by 432×432
// (docs/BENCHMARKS.md), and bf16 tensor cores want multiples of 8.
inline constexpr int64_t kGemmAlign = 16;
// `width` rounded up to a multiple of kGemmAlign.
int64_t AlignedWidth(int64_t width);
// `t` with zero rows appended up to `rows` and, for a 2-D `t` with cols > 0, zero columns up to
// `cols` (weights padded to meet an AlignedWidth input); `t` itself when nothing is added.
torch::Tensor ZeroPadTo(const torch::Tensor& t, int64_t rows, int64_t cols = 0);
// Width of ConcatDenseAndText: dense width + Σ text dims.
int64_t SideWidth(const ModelShape& shape);
// [B, FeatureWidth]: the sparse embeddings, dense features and text embeddings side by side;
// with padded_width > FeatureWidth, zero columns follow up to that width (one copy either way).
torch::Tensor ConcatFeatures(const embedding::ModelInput& input, int64_t padded_width = 0);
// [B, dense + Σ text] (undefined when the shape has neither).
torch::Tensor ConcatDenseAndText(const embedding::ModelInput& input);
// Checks that `input` has the tensors `shape` promises (a model's forward calls it first: a
// mismatched feature spec fails here with the field named, not deep inside a matmul).
void CheckInput(const ModelShape& shape, const embedding::ModelInput& input, std::string_view model);

// ---- Options from Config ---------------------------------------------------------------------

// "<section>.<name>"
std::string OptionKey(std::string_view section, std::string_view name);
// Reads "<section>.<hidden_key>" (each > 0), "<section>.norm", "<section>.dropout" ([0, 1)).
Status ReadMlpOptions(Config& cfg, std::string_view section, std::string_view hidden_key, MlpOptions* out);
// An integer option that must be ≥ min_value; the error names the key.
Status ReadInt(Config& cfg, std::string_view section, std::string_view name, int64_t min_value, int64_t* out);

}  // namespace adrec::models
