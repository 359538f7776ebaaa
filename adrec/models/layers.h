// Building blocks of the ranking models: MLP, the DCN-V2 cross network, the FM second-order
// interaction, mixture-of-experts helpers (MMoE/PLE/split experts), and the option readers every
// model shares. Parameter names are part of the bundle format (the trainer saves named_parameters
// into safetensors) and of the Python twins in bench/reference/ranking_models.py: keep them stable.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
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

// ---- dropout ---------------------------------------------------------------------------------

// Inverted dropout (torch::dropout's contract: kept entries scaled by 1 / (1 − p), the identity
// outside training). On the CPU the mask is uniform < 1 − p: libtorch's bernoulli_ there costs 4×
// as much (20 against 5 ns an element on one thread), a sixth of a sequence model's training
// step. CUDA keeps libtorch's fused kernel. The ranking MLP keeps torch::dropout: its masks are
// small beside its embeddings, and its seeded runs (the figures in docs/) stay as they were.
torch::Tensor Dropout(const torch::Tensor& x, double p, bool train);

// ---- MLP -------------------------------------------------------------------------------------

struct MlpOptions {
  std::vector<int64_t> hidden;  // widths of the hidden layers; empty = identity
  std::string norm = "none";    // none | batch | layer (after each linear, before the ReLU)
  double dropout = 0.0;         // after each ReLU, training only
};

// A tensor derived from a weight (zero-padded, cast to bfloat16, laid out for oneDNN) kept
// between calls that record no gradient (inference): padding DCN-V2's 432×432 cross weights
// afresh per request was 17 % of its scoring time. Rebuilt when the weight changes (an
// optimiser step or a load moves its version counter, a device move its storage) or the key
// (the shape asked for) does.
class WeightCache {
 public:
  using Make = std::function<torch::Tensor(const torch::Tensor&)>;
  // make(t.detach()), run under no grad only when the kept tensor is stale.
  torch::Tensor Get(const torch::Tensor& t, std::array<int64_t, 2> key, const Make& make);
  // ZeroPadTo(t, rows, cols), kept; under autograd padded afresh, as the gradient needs.
  torch::Tensor Padded(const torch::Tensor& t, int64_t rows, int64_t cols = 0);

 private:
  std::mutex mu_;  // one model may serve several threads
  torch::Tensor source_, derived_;
  const void* data_ = nullptr;
  int64_t version_ = -1;
  std::array<int64_t, 2> key_{-1, -1};
};

// Whether a dense layer takes x on the bf16 path: InferencePrecision::kBf16 is set, grad mode is
// off, and x is a 2-D CPU tensor.
bool Bf16Applies(const torch::Tensor& x);
// Whether a product of rows × in by in × out is big enough for the bf16 path to win: oneDNN's
// call and the casts cost ~30 µs, so below ~4M multiply-adds (a 2-request query tower, a
// low-rank cross layer's rank-16 factors) MKL's fp32 GEMM is faster on the dev CPU
// (docs/BENCHMARKS.md, "bf16 GEMMs").
inline constexpr int64_t kBf16MinMacs = int64_t{1} << 22;
inline constexpr int64_t kBf16MinWidth = 64;
bool Bf16Pays(int64_t rows, int64_t in, int64_t out);
// y = x Wᵀ + b, then ReLU when `relu`, as bfloat16 GEMM operands with float32 accumulation on
// oneDNN (AMX tiles where the CPU has them). W is [out, in] ([in, out] when `transposed`),
// zero-padded to x's width and to out_rows outputs, cast and reordered once into `w_cache`;
// b (may be undefined) padded and cast once into `b_cache`. x is float32 or bfloat16; y is
// bfloat16.
torch::Tensor Bf16Linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, bool relu,
                         WeightCache& w_cache, WeightCache& b_cache, int64_t out_rows = 0, bool transposed = false);

// Whether a dense layer takes x on the int8 path: InferencePrecision::kInt8 is set, grad mode is
// off, and x is a 2-D float32 CPU tensor.
bool Int8Applies(const torch::Tensor& x);

// A weight matrix quantised to int8 for FBGEMM (per tensor, affine) and packed, kept while the
// weight's storage and version stay the same, so a weight update re-quantises it.
class Int8Cache {
 public:
  struct Packed {
    torch::Tensor q, packed, col_offsets;
    double scale = 1.0;
    int64_t zero_point = 0;
  };
  Packed Get(const torch::Tensor& w);

 private:
  std::mutex mu_;
  torch::Tensor source_;
  const void* data_ = nullptr;
  int64_t version_ = -1;
  Packed packed_;
};

// y = x Wᵀ + b on FBGEMM's int8 GEMM: W [out, in] quantised once into `cache`, x [B, in] float32
// quantised per call from its own range; float32 out. b may be undefined.
torch::Tensor Int8Linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, Int8Cache& cache);

// Linear → [norm] → ReLU → [dropout] per hidden width. Parameters: "<i>.weight", "<i>.bias",
// and "norm.<i>.weight", "norm.<i>.bias" (+ batch-norm buffers) for layer i. `forward` also takes
// an input zero-padded past in_dim (an AlignedWidth one): the first weight is padded to match.
// On the bf16 path (Bf16Applies, norm "none", each layer where Bf16Pays) the activations stay
// bfloat16 between bf16 layers; the output is float32. On the int8 path (Int8Applies) every
// layer's product is Int8Linear.
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
  WeightCache first_padded_;  // the first layer's weight on a padded input
  std::deque<WeightCache> bf16_w_, bf16_b_;  // per layer, for Bf16Linear
  std::deque<Int8Cache> int8_;               // per layer, for Int8Linear
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
  // The layer on the bf16 path (Bf16Applies): W x_l in bfloat16, the rest float32.
  torch::Tensor ForwardBf16(const torch::Tensor& x0, const torch::Tensor& x);
  // A full-rank layer on the int8 path (Int8Applies): W x_l in int8, the rest float32.
  torch::Tensor ForwardInt8(const torch::Tensor& x0, const torch::Tensor& x);
  torch::Tensor w, u, v, b;  // undefined where the variant has none

 private:
  int64_t dim_ = 0;
  WeightCache pw_, pu_, pv_, pb_;
  WeightCache bw_, bu_, bv_, bb_, none_;  // bf16 copies; none_ for the bias-free V product
  Int8Cache iw_;                          // the padded full-rank weight, int8
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
