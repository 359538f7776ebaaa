#include "adrec/models/fused_cross.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <string>

#include "adrec/models/layers.h"

namespace adrec::models {
namespace {

constexpr int64_t kRowBlock = 64;  // rows per task of the fused pass; also fixes the bias sum's order

// One layer's elementwise backward in one pass over [B, P]:
//   gh = G ⊙ x0  (the gradient of h = W x + b);  dx0 (=, +=) G ⊙ h (+ G on layer 0, where x = x0);
//   db = Σ_rows gh, summed per block of rows in block order, so any thread count gives the same bits.
void FusedPass(const float* g, const float* x0, const float* h, float* gh, float* dx0, float* db, int64_t batch,
               int64_t p, bool first, bool identity, bool need_x0) {
  RECORD_FUNCTION("adrec::FusedCrossPass", std::vector<c10::IValue>());  // its own line in profiler traces
  const int64_t blocks = (batch + kRowBlock - 1) / kRowBlock;
  std::vector<float> partial(static_cast<size_t>(blocks * p), 0.f);
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t blk = begin; blk < end; ++blk) {
      float* __restrict__ sum = partial.data() + blk * p;
      for (int64_t i = blk * kRowBlock; i < std::min(batch, (blk + 1) * kRowBlock); ++i) {
        const float* __restrict__ gi = g + i * p;
        const float* __restrict__ xi = x0 + i * p;
        const float* __restrict__ hi = h + i * p;
        float* __restrict__ ghi = gh + i * p;
        for (int64_t j = 0; j < p; ++j) {
          ghi[j] = gi[j] * xi[j];
          sum[j] += ghi[j];
        }
        if (!need_x0) continue;
        float* __restrict__ di = dx0 + i * p;
        if (first && identity) {
          for (int64_t j = 0; j < p; ++j) di[j] = gi[j] * hi[j] + gi[j];
        } else if (first) {
          for (int64_t j = 0; j < p; ++j) di[j] = gi[j] * hi[j];
        } else if (identity) {
          for (int64_t j = 0; j < p; ++j) di[j] += gi[j] * hi[j] + gi[j];
        } else {
          for (int64_t j = 0; j < p; ++j) di[j] += gi[j] * hi[j];
        }
      }
    }
  });
  std::fill(db, db + p, 0.f);
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const float* sum = partial.data() + blk * p;
    for (int64_t j = 0; j < p; ++j) db[j] += sum[j];
  }
}

// Inputs, in edge order: x0, then per layer w, b (full rank) or u, v, b (low rank).
struct FusedCrossBackward final : torch::autograd::Node {
  at::Tensor x0;
  std::vector<at::Tensor> xs;  // x_l, the input of layer l (xs[0] is x0)
  std::vector<at::Tensor> hs;  // h_l = W_l x_l + b_l
  std::vector<at::Tensor> xv;  // low rank: x_l V_l
  std::vector<at::Tensor> a;   // padded W_l [P, P] (full) or U_l [P, r] (low rank)
  std::vector<at::Tensor> vp;  // low rank: padded V_l [P, r]
  int64_t dim = 0;
  bool low_rank = false;

  std::string name() const override { return "adrec::FusedCrossBackward"; }
  void release_variables() override {
    x0.reset();
    for (auto* list : {&xs, &hs, &xv, &a, &vp}) list->clear();
  }

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    const int64_t layers = static_cast<int64_t>(hs.size()), per = low_rank ? 3 : 2;
    torch::autograd::variable_list out(1 + layers * per);
    if (!grads[0].defined()) return out;
    at::Tensor g = grads[0].contiguous();
    const int64_t batch = g.size(0), p = g.size(1);
    const bool need_x0 = task_should_compute_output(0);
    at::Tensor dx0 = need_x0 ? torch::empty_like(g) : at::Tensor();
    at::Tensor gh = torch::empty_like(g), db = torch::empty({p}, g.options());
    for (int64_t l = layers - 1; l >= 0; --l) {
      const size_t k = static_cast<size_t>(l);
      const bool last = l == 0;  // the last one backward: its x is x0
      FusedPass(g.data_ptr<float>(), x0.data_ptr<float>(), hs[k].data_ptr<float>(), gh.data_ptr<float>(),
                need_x0 ? dx0.data_ptr<float>() : nullptr, db.data_ptr<float>(), batch, p, l == layers - 1, last,
                need_x0);
      const size_t at = static_cast<size_t>(1 + l * per);
      if (task_should_compute_output(at + per - 1)) out[at + per - 1] = db.narrow(0, 0, dim).clone();
      // The gradient reaching x_l through the product, as a factor: gh W (full) or (gh U) V^T.
      at::Tensor through, right;
      if (!low_rank) {
        if (task_should_compute_output(at)) out[at] = torch::mm(gh.t(), xs[k]).narrow(0, 0, dim).narrow(1, 0, dim).contiguous();
        through = gh;
        right = a[k];
      } else {
        through = torch::mm(gh, a[k]);  // d(x V) [B, r]
        if (task_should_compute_output(at)) out[at] = torch::mm(gh.t(), xv[k]).narrow(0, 0, dim).contiguous();
        if (task_should_compute_output(at + 1)) out[at + 1] = torch::mm(xs[k].t(), through).narrow(0, 0, dim).contiguous();
        right = vp[k].t();
      }
      if (last) {
        if (need_x0) dx0.addmm_(through, right);
      } else {
        g = torch::addmm(g, through, right);  // the x path: G + gh W
      }
    }
    out[0] = dx0;
    return out;
  }
};

}  // namespace

bool FusedCrossApplies(const at::Tensor& x0, const std::vector<CrossWeights>& layers) {
  auto cpu_float = [](const at::Tensor& t) { return t.defined() && t.is_cpu() && t.scalar_type() == at::kFloat; };
  if (!cpu_float(x0) || x0.dim() != 2 || layers.empty()) return false;
  for (const CrossWeights& w : layers) {
    const bool full = w.w.defined();
    if (!cpu_float(w.b) || (full ? !cpu_float(w.w) : !(cpu_float(w.u) && cpu_float(w.v)))) return false;
    if (full != layers[0].w.defined()) return false;
  }
  return true;
}

at::Tensor FusedCrossNet(const at::Tensor& x0_in, const std::vector<CrossWeights>& layers) {
  TORCH_CHECK(FusedCrossApplies(x0_in, layers), "FusedCrossNet: want a 2-D float32 CPU input and float32 CPU weights");
  const bool low_rank = !layers[0].w.defined();
  const int64_t dim = layers[0].b.size(0), p = x0_in.size(1);
  TORCH_CHECK(p >= dim, "FusedCrossNet: input is ", x0_in.sizes(), ", want ", dim, " columns or more (zero-padded)");
  std::vector<at::Tensor> inputs{x0_in};
  for (const CrossWeights& w : layers) {
    if (low_rank) {
      inputs.push_back(w.u);
      inputs.push_back(w.v);
    } else {
      inputs.push_back(w.w);
    }
    inputs.push_back(w.b);
  }
  bool any_grad = false;
  for (const auto& t : inputs) any_grad = any_grad || t.requires_grad();
  const bool record = any_grad && torch::autograd::GradMode::is_enabled();

  auto node = record ? std::shared_ptr<FusedCrossBackward>(new FusedCrossBackward(), torch::autograd::deleteNode)
                     : nullptr;
  at::Tensor x0, x;
  {
    torch::NoGradGuard no_grad;
    x0 = x0_in.detach().contiguous();
    x = x0;
    for (const CrossWeights& w : layers) {
      const at::Tensor b = ZeroPadTo(w.b.detach(), p);
      at::Tensor h, a, v, xv;
      if (!low_rank) {
        a = ZeroPadTo(w.w.detach(), p, p);
        h = torch::addmm(b, x, a.t());
      } else {
        a = ZeroPadTo(w.u.detach(), p);
        v = ZeroPadTo(w.v.detach(), p);
        xv = torch::mm(x, v);
        h = torch::addmm(b, xv, a.t());
      }
      const at::Tensor next = torch::addcmul(x, x0, h);
      if (node) {
        node->xs.push_back(x);
        node->hs.push_back(h);
        node->a.push_back(a);
        if (low_rank) {
          node->xv.push_back(xv);
          node->vp.push_back(v);
        }
      }
      x = next;
    }
  }
  if (node) {
    node->x0 = x0;
    node->dim = dim;
    node->low_rank = low_rank;
    torch::autograd::edge_list edges;
    for (const auto& t : inputs) edges.push_back(torch::autograd::impl::gradient_edge(t));
    node->set_next_edges(std::move(edges));
    torch::autograd::set_history(x, node);
  }
  return x;
}

}  // namespace adrec::models
