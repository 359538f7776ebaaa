// Which arithmetic the dense layers use for calls that record no gradient (serving, `adrec
// eval`). fp32: float32 GEMMs on MKL. bf16: bfloat16 GEMM operands with float32 accumulation on
// oneDNN, whose weights are cast and laid out once and run on the CPU's AMX tiles where it has
// them; the activations between cross layers stay float32. int8: FBGEMM's int8 GEMM with each
// weight matrix quantised once (per tensor) and the activations quantised per call (dynamic
// quantisation), float32 in and out, for the MLP layers and full-rank cross layers; low-rank
// factors, gates and output heads stay float32. Training is never affected.
#pragma once

#include <string_view>

#include "adrec/core/status.h"

namespace adrec::models {

enum class InferencePrecision { kFp32, kBf16, kInt8 };

// "fp32", "bf16", "int8", or "auto": bf16 where CpuHasBf16Matmul(), fp32 elsewhere.
StatusOr<InferencePrecision> ParseInferencePrecision(std::string_view name);
std::string_view PrecisionName(InferencePrecision precision);
// Process-wide, fp32 until set: the server and `adrec eval` set it once at start.
void SetInferencePrecision(InferencePrecision precision);
InferencePrecision GetInferencePrecision();
// Whether the CPU multiplies bfloat16 natively (AMX-BF16 or AVX512-BF16); without it oneDNN
// emulates bf16 and the fp32 path is faster.
bool CpuHasBf16Matmul();

}  // namespace adrec::models
