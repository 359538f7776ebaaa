// Fine-tuning a trained ranking model (adrec train --init-from B --finetune MODE): which of the
// dense network's parameters a mode trains, and LoRA's adapters. Modes:
//   full  every parameter and the embedding rows (the run's optimisers as configured)
//   head  only the output layers ("out.*", and the per-target "towers.*"); embeddings frozen
//   lora  low-rank adapters (Hu et al. 2021) on every matrix of the network, W = W0 + B·A with
//         A [r, in] random, B [out, r] zero; biases, norms and embeddings frozen. The adapters
//         take W's gradient through the chain rule (dA = Bᵀ dW, dB = dW Aᵀ), so any layer of
//         any model is adapted without changing its code, and the saved bundle holds the merged W.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "adrec/core/status.h"

namespace adrec::train {

struct FinetuneOptions {
  std::string mode = "full";  // full | head | lora
  int lora_rank = 4;
};

class Finetuner {
 public:
  // InvalidArgument for an unknown mode, a rank < 1, or a model without an output layer (head).
  static StatusOr<Finetuner> Create(torch::nn::Module& net, const FinetuneOptions& options, uint64_t seed);
  // What the dense optimiser steps (and gradient clipping reads).
  const std::vector<torch::Tensor>& trainable() const { return trainable_; }
  bool embeddings_frozen() const { return options_.mode != "full"; }
  // lora: after backward, moves each adapted matrix's gradient onto its adapters.
  void BeforeStep();
  // lora: after the optimiser step, W = W0 + B·A.
  void AfterStep();
  // mode, rank, trainable parameter count, the dense optimiser's state (Adam: 2 floats each).
  nlohmann::ordered_json Summary() const;

 private:
  struct Adapter {
    torch::Tensor w, w0, a, b;
  };
  FinetuneOptions options_;
  std::vector<torch::Tensor> trainable_;
  std::vector<Adapter> adapters_;
  int64_t frozen_ = 0;
};

}  // namespace adrec::train
