// Row-wise sparse optimisers for embedding tables (internal to adrec/embedding). The table owns one
// SparseOptimizer; its per-row state tensors grow with the table and are reset when a row is
// reused, so state always belongs to the ID that owns the row.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "adrec/core/status.h"
#include "adrec/embedding/embedding.h"

namespace adrec::embedding {

class SparseOptimizer {
 public:
  // InvalidArgument on an unknown kind (names kSparseOptimizerNames).
  static StatusOr<std::unique_ptr<SparseOptimizer>> Make(const SparseOptimizerOptions& options);
  virtual ~SparseOptimizer() = default;

  const SparseOptimizerOptions& options() const { return options_; }
  // Allocates the state for `rows` rows of width `dim` on `device`.
  void Init(int64_t rows, int64_t dim, torch::Device device);
  // Grows (or shrinks) the state to `rows` rows; kept rows keep their state, new rows start fresh.
  void Resize(int64_t rows);
  // Fresh state for `rows` (int64 [n], on the state's device): a reused row forgets its past owner.
  void ResetRows(const torch::Tensor& rows);

  // Applies grad [n, dim] to the unique rows (int64 [n]) of weight [rows, dim] in place. `fused`
  // selects the multi-threaded CPU loop (CPU tensors only); otherwise the torch-ops path, the one
  // CUDA runs (tests compare the two on CPU).
  void Apply(torch::Tensor& weight, const torch::Tensor& rows, const torch::Tensor& grad, bool fused);

  // Named state tensors ("sum", "m", "v", "step", "z", "n"), first `rows` rows (-1 = all).
  std::vector<std::pair<std::string, torch::Tensor>> State(int64_t rows = -1) const;
  // Restores State's tensors found under prefix + name; InvalidArgument naming a missing tensor
  // or a shape that is not [rows, ...]. Rows past the loaded ones keep fresh state.
  Status LoadState(const std::map<std::string, torch::Tensor>& tensors, const std::string& prefix, int64_t rows);
  // Bytes of the state tensors.
  uint64_t StateBytes() const;

 protected:
  explicit SparseOptimizer(SparseOptimizerOptions options) : options_(std::move(options)) {}
  struct Slot {
    std::string name;
    bool per_coordinate = true;  // [rows, dim] when true, else [rows]
    torch::ScalarType dtype = torch::kFloat;
    double initial = 0.0;
    torch::Tensor value;
  };
  // Declares the state slots; called by the subclass constructor.
  void AddSlot(std::string name, bool per_coordinate, torch::ScalarType dtype, double initial);
  torch::Tensor& slot(size_t i) { return slots_[i].value; }

  // rows/grad are contiguous, on weight's device; grad is float.
  virtual void ApplyFused(torch::Tensor& weight, const torch::Tensor& rows, const torch::Tensor& grad) = 0;
  virtual void ApplyTorch(torch::Tensor& weight, const torch::Tensor& rows, const torch::Tensor& grad) = 0;

  SparseOptimizerOptions options_;
  int64_t dim_ = 0;
  std::vector<Slot> slots_;
};

}  // namespace adrec::embedding
