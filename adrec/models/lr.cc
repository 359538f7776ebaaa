#include "adrec/models/lr.h"

#include <torch/torch.h>

#include "adrec/models/layers.h"
#include "adrec/models/per_sample.h"

namespace adrec::models {

StatusOr<LrOptions> ReadLrOptions(Config&, std::string_view) { return LrOptions{}; }

LrModel::LrModel(const ModelShape& shape, const LrOptions&) : shape_(shape) {
  out_ = register_module("out", torch::nn::Linear(1 + SideWidth(shape), static_cast<int64_t>(shape.targets.size())));
  torch::NoGradGuard no_grad;
  out_->weight.zero_();
  out_->weight.select(1, 0).fill_(1.0);
  out_->bias.zero_();
}

torch::Tensor LrModel::forward(const embedding::ModelInput& input) {
  CheckInput(shape_, input, "lr");
  TORCH_CHECK(input.linear.defined(), "lr: ModelInput::linear is undefined; build the embedding collection with linear_terms");
  torch::Tensor side = ConcatDenseAndText(input);
  torch::Tensor x = side.defined() ? torch::cat({input.linear, side}, 1) : input.linear;
  return TapedLinear(*out_, x);
}

}  // namespace adrec::models
