#include "adrec/train/adversarial.h"

namespace adrec::train {
namespace {

// Per-sample L2 norm over all fields: [B, 1].
torch::Tensor SampleNorm(const std::vector<torch::Tensor>& fields) {
  torch::Tensor sq;
  for (const torch::Tensor& f : fields) {
    torch::Tensor s = f.to(torch::kFloat32).pow(2).sum(1, /*keepdim=*/true);
    sq = sq.defined() ? sq + s : s;
  }
  return sq.sqrt();
}

}  // namespace

Status CheckAdversarial(const AdversarialOptions& o, const std::string& where) {
  if (o.method != "none" && o.method != "fgsm" && o.method != "pgd") {
    return InvalidArgumentError(where + " '" + o.method + "' is not one of none, fgsm, pgd");
  }
  if (!(o.eps > 0) || o.steps < 1 || !(o.weight >= 0)) {
    return InvalidArgumentError(where + ": eps must be positive, steps at least 1, weight at least 0");
  }
  return Status::Ok();
}

std::vector<torch::Tensor> AdversarialDelta(const InputLoss& loss, const embedding::ModelInput& input,
                                            const AdversarialOptions& o) {
  torch::AutoGradMode grad(true);
  std::vector<torch::Tensor> base, delta;
  for (const torch::Tensor& f : input.sparse) {
    base.push_back(f.detach());
    delta.push_back(torch::zeros_like(f, f.options().requires_grad(false)));
  }
  if (base.empty()) return delta;
  const torch::Tensor radius = (o.eps * SampleNorm(base)).clamp_min(1e-12);
  const bool pgd = o.method == "pgd";
  const int steps = pgd ? o.steps : 1;
  const double step = pgd ? 2.5 / steps : 1.0;  // of the radius (Madry et al.: 2.5 ε / steps)
  for (int s = 0; s < steps; ++s) {
    embedding::ModelInput x = input;
    for (size_t f = 0; f < delta.size(); ++f) {
      delta[f].requires_grad_(true);
      x.sparse[f] = base[f] + delta[f];
    }
    const std::vector<torch::Tensor> g = torch::autograd::grad({loss(x)}, delta);
    const torch::Tensor gn = SampleNorm(g).clamp_min(1e-20);
    for (size_t f = 0; f < delta.size(); ++f) {
      delta[f] = (delta[f].detach() + (step * radius / gn).to(g[f].dtype()) * g[f]).detach();
    }
    // Back onto the ball.
    const torch::Tensor scale = (radius / SampleNorm(delta).clamp_min(1e-20)).clamp_max(1.0);
    for (torch::Tensor& d : delta) d = d * scale.to(d.dtype());
  }
  return delta;
}

embedding::ModelInput Perturbed(const embedding::ModelInput& input, const std::vector<torch::Tensor>& delta) {
  embedding::ModelInput x = input;
  for (size_t f = 0; f < delta.size() && f < x.sparse.size(); ++f) x.sparse[f] = x.sparse[f] + delta[f];
  return x;
}

}  // namespace adrec::train
