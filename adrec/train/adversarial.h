// Adversarial perturbations of the looked-up embeddings (FGSM and PGD in the L2 form of Miyato
// et al. 2017 and APR, He et al. 2018): for each sample, the change of its sparse fields'
// embeddings within a ball of radius eps × their norm that raises the loss most. Training adds
// the loss at the perturbed embeddings (train.adversarial); `adrec eval --perturb` measures the
// AUC under it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "adrec/core/status.h"
#include "adrec/embedding/input.h"

namespace adrec::train {

struct AdversarialOptions {
  std::string method = "none";  // none | fgsm (one step to the ball's edge) | pgd (steps, projected)
  double eps = 0.1;             // radius, relative to the norm of the sample's embeddings
  double weight = 1.0;          // training: loss = clean + weight × perturbed
  int steps = 3;                // pgd
  bool enabled() const { return method != "none"; }
};
// InvalidArgument names the bad value (unknown method, eps ≤ 0, steps < 1, weight < 0).
Status CheckAdversarial(const AdversarialOptions& o, const std::string& where);

using InputLoss = std::function<torch::Tensor(const embedding::ModelInput&)>;

// The perturbation of `input.sparse` (one tensor per field, detached) that raises `loss`,
// within radius eps × ‖sample's embeddings‖ per sample. Leaves no gradient in the model.
std::vector<torch::Tensor> AdversarialDelta(const InputLoss& loss, const embedding::ModelInput& input,
                                            const AdversarialOptions& options);
// `input` with `delta` added to its sparse fields (gradients still flow into `input`).
embedding::ModelInput Perturbed(const embedding::ModelInput& input, const std::vector<torch::Tensor>& delta);

}  // namespace adrec::train
