#include "adrec/tensor/tensor_io.h"

#include <torch/torch.h>

#include <cstring>
#include <set>

#include "adrec/core/safetensors.h"

namespace adrec::tensor {
namespace {

std::optional<Dtype> FromTorch(c10::ScalarType t) {
  switch (t) {
    case torch::kFloat64: return Dtype::kF64;
    case torch::kFloat32: return Dtype::kF32;
    case torch::kFloat16: return Dtype::kF16;
    case torch::kBFloat16: return Dtype::kBF16;
    case torch::kInt64: return Dtype::kI64;
    case torch::kInt32: return Dtype::kI32;
    case torch::kInt16: return Dtype::kI16;
    case torch::kInt8: return Dtype::kI8;
    case torch::kUInt8: return Dtype::kU8;
    case torch::kBool: return Dtype::kBool;
    default: return std::nullopt;
  }
}

c10::ScalarType ToTorch(Dtype d) {
  switch (d) {
    case Dtype::kF64: return torch::kFloat64;
    case Dtype::kF32: return torch::kFloat32;
    case Dtype::kF16: return torch::kFloat16;
    case Dtype::kBF16: return torch::kBFloat16;
    case Dtype::kI64: return torch::kInt64;
    case Dtype::kI32: return torch::kInt32;
    case Dtype::kI16: return torch::kInt16;
    case Dtype::kI8: return torch::kInt8;
    case Dtype::kU8: return torch::kUInt8;
    case Dtype::kBool: return torch::kBool;
  }
  return torch::kFloat32;
}

}  // namespace

Status SaveTensors(const std::filesystem::path& path,
                   const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                   const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> host;  // keeps the CPU copies alive while the views point at them
  std::vector<TensorView> views;
  host.reserve(tensors.size());
  views.reserve(tensors.size());
  std::set<std::string_view> names;
  for (const auto& [name, tensor] : tensors) {
    auto bad = [&](const std::string& what) {
      return InvalidArgumentError("writing " + path.string() + ": tensor '" + name + "': " + what);
    };
    if (!names.insert(name).second) return bad("duplicate name");
    if (!tensor.defined()) return bad("undefined tensor");
    std::optional<Dtype> dtype = FromTorch(tensor.scalar_type());
    if (!dtype) return bad(std::string("dtype ") + c10::toString(tensor.scalar_type()) + " has no safetensors form here");
    if (tensor.is_sparse() || tensor.layout() != torch::kStrided) return bad("only dense (strided) tensors are stored");
    // detach: no autograd graph is kept alive; contiguous: the format is row-major, packed.
    torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
    if (cpu.is_conj() || cpu.is_neg()) cpu = cpu.resolve_conj().resolve_neg();
    TensorView v;
    v.name = name;
    v.dtype = *dtype;
    v.shape.assign(cpu.sizes().begin(), cpu.sizes().end());
    v.data = std::span(static_cast<const std::byte*>(cpu.data_ptr()), cpu.nbytes());
    views.push_back(std::move(v));
    host.push_back(std::move(cpu));
  }
  return WriteSafetensors(path, views, metadata);
}

StatusOr<std::map<std::string, torch::Tensor>> LoadTensors(const std::filesystem::path& path, torch::Device device,
                                                           std::map<std::string, std::string>* metadata) {
  ADREC_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(path));
  std::map<std::string, torch::Tensor> out;
  for (const TensorView& v : file.tensors()) {
    if (v.dtype == Dtype::kBool) {
      // torch assumes bool bytes are 0 or 1; anything else is corruption, not "true".
      for (size_t i = 0; i < v.data.size(); ++i) {
        if (static_cast<unsigned char>(v.data[i]) > 1) {
          return DataLossError(path.string() + ": tensor '" + v.name + "': BOOL element " + std::to_string(i) +
                               " is byte " + std::to_string(static_cast<unsigned>(v.data[i])) + ", not 0 or 1");
        }
      }
    }
    // An owned copy: the mapping goes away when `file` does, and the file may be replaced.
    // at::empty (not torch::empty): a plain tensor, and no autograd headers needed here.
    torch::Tensor t = at::empty(v.shape, at::TensorOptions().dtype(ToTorch(v.dtype)));
    if (!v.data.empty()) std::memcpy(t.data_ptr(), v.data.data(), v.data.size());
    if (device != torch::Device(torch::kCPU)) t = t.to(device);
    out.emplace(v.name, std::move(t));
  }
  if (metadata) *metadata = file.metadata();
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> ModuleTensors(torch::nn::Module& module, const std::string& prefix) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : module.named_parameters()) out.emplace_back(prefix + p.key(), p.value().detach());
  for (const auto& b : module.named_buffers()) out.emplace_back(prefix + b.key(), b.value());
  return out;
}

Status LoadModuleTensors(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                         const std::string& prefix, const std::string& source) {
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : ModuleTensors(module, prefix)) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      return InvalidArgumentError(source + ": no tensor '" + name + "' (written by another model or config?)");
    }
    if (!it->second.sizes().equals(target.sizes())) {
      return InvalidArgumentError(source + ": tensor '" + name + "' has shape " + ShapeString(it->second.sizes()) +
                                  ", the model expects " + ShapeString(target.sizes()));
    }
    target.copy_(it->second);
  }
  return Status::Ok();
}

}  // namespace adrec::tensor
