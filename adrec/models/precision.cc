#include "adrec/models/precision.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/cpu/Utils.h>

#include <ATen/Context.h>

#include <algorithm>
#include <atomic>
#include <string>

namespace adrec::models {
namespace {

std::atomic<InferencePrecision> g_precision{InferencePrecision::kFp32};

bool Capability(const std::unordered_map<std::string, c10::IValue>& caps, const std::string& key) {
  auto it = caps.find(key);
  return it != caps.end() && it->second.isBool() && it->second.toBool();
}

// The oneDNN operators the bf16 layers call (models/layers.cc, Bf16Linear).
bool HasOneDnnLinear() {
  auto& d = c10::Dispatcher::singleton();
  return d.findSchema({"mkldnn::_linear_pointwise", ""}).has_value() &&
         d.findSchema({"mkldnn::_reorder_linear_weight", ""}).has_value();
}

// The int8 layers (models/layers.cc, Int8Linear) call FBGEMM's int8 GEMM.
bool HasFbgemm() {
  const auto engines = at::globalContext().supportedQEngines();
  return std::find(engines.begin(), engines.end(), at::QEngine::FBGEMM) != engines.end();
}

}  // namespace

StatusOr<InferencePrecision> ParseInferencePrecision(std::string_view name) {
  if (name == "fp32") return InferencePrecision::kFp32;
  if (name == "bf16") {
    if (!HasOneDnnLinear()) return FailedPreconditionError("precision bf16: this libtorch was built without oneDNN");
    return InferencePrecision::kBf16;
  }
  if (name == "int8") {
    if (!HasFbgemm()) {
      return FailedPreconditionError("precision int8: this libtorch was built without FBGEMM");
    }
    return InferencePrecision::kInt8;
  }
  if (name == "auto") return CpuHasBf16Matmul() && HasOneDnnLinear() ? InferencePrecision::kBf16 : InferencePrecision::kFp32;
  return InvalidArgumentError("precision: want auto, fp32, bf16 or int8, got '" + std::string(name) + "'");
}

std::string_view PrecisionName(InferencePrecision precision) {
  switch (precision) {
    case InferencePrecision::kBf16: return "bf16";
    case InferencePrecision::kInt8: return "int8";
    case InferencePrecision::kFp32: break;
  }
  return "fp32";
}

void SetInferencePrecision(InferencePrecision precision) { g_precision.store(precision); }

InferencePrecision GetInferencePrecision() { return g_precision.load(std::memory_order_relaxed); }

bool CpuHasBf16Matmul() {
  static const bool has = [] {
    const auto caps = at::cpu::get_cpu_capabilities();
    return Capability(caps, "amx_bf16") || Capability(caps, "avx512_bf16");
  }();
  return has;
}

}  // namespace adrec::models
