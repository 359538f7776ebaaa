// torch::Tensor <-> safetensors files: how model bundles store weights (DESIGN.md, "Model bundle
// directory") and how Hugging Face weights are read. The byte format lives in safetensors.h.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "adrec/core/status.h"

namespace torch::nn {
class Module;
}

namespace adrec::tensor {

// Writes `tensors` (any device; dtypes f64 f32 f16 bf16 i64 i32 i16 i8 u8 bool) as contiguous
// CPU copies, atomically (readers see the old file or the new one). Names must be unique,
// non-empty and not "__metadata__". On disk the tensors are ordered by element size, then name,
// as Python's safetensors does, so every tensor's data is aligned to its element size.
Status SaveTensors(const std::filesystem::path& path,
                   const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                   const std::map<std::string, std::string>& metadata = {});

// Reads every tensor into memory owned by the returned tensors (nothing refers to the file
// afterwards, so it may be replaced), on `device`. `metadata`, when given, receives the
// file's "__metadata__" map. A malformed file is a DataLoss error naming the file and tensor.
StatusOr<std::map<std::string, torch::Tensor>> LoadTensors(
    const std::filesystem::path& path, torch::Device device = torch::kCPU,
    std::map<std::string, std::string>* metadata = nullptr);

// Every parameter and buffer of `module` as "<prefix><name>" (the layout bundles and
// checkpoints store), and back: InvalidArgument naming the tensor and `source` when one is
// missing or has another shape (written by another model or config).
std::vector<std::pair<std::string, torch::Tensor>> ModuleTensors(torch::nn::Module& module, const std::string& prefix);
Status LoadModuleTensors(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                         const std::string& prefix, const std::string& source);

}  // namespace adrec::tensor
