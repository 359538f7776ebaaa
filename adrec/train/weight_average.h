// Polyak averaging of a model's weights (train.ema): a shadow copy of the parameters, updated
// after every optimizer step as shadow ← d · shadow + (1 − d) · w, with d = min(decay,
// (1 + n) / (10 + n)) at update n so the first updates follow the weights rather than the
// initialisation. Training goes on with the raw weights; evaluation and the bundle read the
// shadow, swapped in for the while (WeightAverage::Swapped).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "adrec/core/status.h"

namespace adrec::train {

class WeightAverage {
 public:
  // `params` in a fixed order (a module's named_parameters()); the shadow starts as their copy.
  WeightAverage(std::vector<std::pair<std::string, torch::Tensor>> params, double decay);

  void Update();
  // The shadow back to the current weights, no updates yet (the weights were replaced, e.g. by
  // rank 0's in a distributed run).
  void Reset();
  // Exchanges the shadow and the weights in place; a second call exchanges them back.
  void Swap();
  int64_t updates() const { return updates_; }

  // The shadow as "<prefix><name>" tensors plus "<prefix>updates" (int64), for a checkpoint.
  std::vector<std::pair<std::string, torch::Tensor>> State(const std::string& prefix) const;
  // Reads back what State wrote; InvalidArgument naming `source` and the tensor on a missing
  // tensor or another shape.
  Status Restore(const std::map<std::string, torch::Tensor>& tensors, const std::string& prefix,
                 const std::string& source);

  // The shadow in the weights for a scope (nothing where `average` is null).
  class Swapped {
   public:
    explicit Swapped(WeightAverage* average) : average_(average) {
      if (average_ != nullptr) average_->Swap();
    }
    ~Swapped() {
      if (average_ != nullptr) average_->Swap();
    }
    Swapped(const Swapped&) = delete;
    Swapped& operator=(const Swapped&) = delete;

   private:
    WeightAverage* average_;
  };

 private:
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<torch::Tensor> shadow_;
  double decay_;
  int64_t updates_ = 0;
};

}  // namespace adrec::train
