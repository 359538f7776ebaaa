// Row-wise quantised embedding rows (embedding.h: QuantizeRows, DequantizeRows).
#include <torch/torch.h>

#include "adrec/embedding/embedding.h"

namespace adrec::embedding {

QuantizedRows QuantizeRows(const torch::Tensor& weight, int bits) {
  TORCH_CHECK(bits == 8 || bits == 4, "QuantizeRows: bits must be 8 or 4, got ", bits);
  TORCH_CHECK(weight.dim() == 2, "QuantizeRows: want [rows, dim], got ", weight.sizes());
  torch::NoGradGuard no_grad;
  const torch::Tensor w = weight.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const double levels = static_cast<double>((1 << bits) - 1);
  const auto [lo, hi] = torch::aminmax(w, 1);
  // The float16 parameters, and the codes against exactly what decoding will use.
  const torch::Tensor scale_h = ((hi - lo) / levels).to(torch::kHalf), min_h = lo.to(torch::kHalf);
  const torch::Tensor scale = scale_h.to(torch::kFloat).unsqueeze(1), min = min_h.to(torch::kFloat).unsqueeze(1);
  torch::Tensor codes = torch::where(scale > 0, ((w - min) / scale.clamp_min(1e-30)).round().clamp(0, levels),
                                     torch::zeros_like(w))
                            .to(torch::kUInt8);
  if (bits == 4) {
    if (codes.size(1) % 2 == 1) codes = torch::cat({codes, torch::zeros({codes.size(0), 1}, codes.options())}, 1);
    codes = torch::bitwise_or(codes.slice(1, 0, codes.size(1), 2), torch::bitwise_left_shift(codes.slice(1, 1, codes.size(1), 2), 4));
  }
  return {codes.contiguous(), torch::stack({scale_h, min_h}, 1).contiguous()};
}

torch::Tensor DequantizeRows(const QuantizedRows& q, int bits, int dim, std::span<const int64_t> rows) {
  torch::NoGradGuard no_grad;
  torch::Tensor codes = q.codes, params = q.params;
  if (!rows.empty()) {
    const torch::Tensor index =
        torch::from_blob(const_cast<int64_t*>(rows.data()), {static_cast<int64_t>(rows.size())}, torch::kLong);
    codes = codes.index_select(0, index);
    params = params.index_select(0, index);
  }
  if (bits == 4) {
    const torch::Tensor low = torch::bitwise_and(codes, 15), high = torch::bitwise_right_shift(codes, 4);
    codes = torch::stack({low, high}, 2).reshape({codes.size(0), -1});
  }
  const torch::Tensor p = params.to(torch::kFloat);
  return (codes.narrow(1, 0, dim).to(torch::kFloat) * p.select(1, 0).unsqueeze(1) + p.select(1, 1).unsqueeze(1)).contiguous();
}

}  // namespace adrec::embedding
