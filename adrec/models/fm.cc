#include "adrec/models/fm.h"

#include <torch/torch.h>

#include <string>

#include "adrec/models/layers.h"
#include "adrec/models/per_sample.h"

namespace adrec::models {

StatusOr<FmOptions> ReadFmOptions(Config&, std::string_view) { return FmOptions{}; }

StatusOr<int> FmFieldDim(const ModelShape& shape, std::string_view model) {
  if (shape.sparse_dims.empty()) {
    return InvalidArgumentError(std::string(model) + " needs at least one sparse field (its interactions are between their embeddings)");
  }
  auto name = [&](size_t i) {
    return i < shape.sparse_names.size() ? "'" + shape.sparse_names[i] + "'" : "#" + std::to_string(i);
  };
  for (size_t i = 1; i < shape.sparse_dims.size(); ++i) {
    if (shape.sparse_dims[i] != shape.sparse_dims[0]) {
      return InvalidArgumentError(std::string(model) + " needs equal embedding dims for all sparse fields: field " + name(0) +
                                  " has dim " + std::to_string(shape.sparse_dims[0]) + ", field " + name(i) + " has dim " +
                                  std::to_string(shape.sparse_dims[i]));
    }
  }
  return shape.sparse_dims[0];
}

torch::Tensor FmFields(const embedding::ModelInput& input, torch::nn::Linear& dense_proj) {
  std::vector<torch::Tensor> fields(input.sparse.begin(), input.sparse.end());
  if (dense_proj) fields.push_back(TapedLinear(*dense_proj, ConcatDenseAndText(input)));
  return torch::stack(fields, 1);
}

FmModel::FmModel(const ModelShape& shape, const FmOptions&) : shape_(shape) {
  if (const int64_t side = SideWidth(shape); side > 0) dense_proj_ = register_module("dense_proj", torch::nn::Linear(side, shape.sparse_dims.at(0)));
  out_ = register_module("out", torch::nn::Linear(1 + shape.sparse_dims.at(0), static_cast<int64_t>(shape.targets.size())));
  torch::NoGradGuard no_grad;
  out_->weight.fill_(1.0);
  out_->bias.zero_();
}

torch::Tensor FmModel::forward(const embedding::ModelInput& input) {
  CheckInput(shape_, input, "fm");
  TORCH_CHECK(input.linear.defined(), "fm: ModelInput::linear is undefined; build the embedding collection with linear_terms");
  torch::Tensor fm = FmBiInteraction(FmFields(input, dense_proj_));
  return TapedLinear(*out_, torch::cat({input.linear, fm}, 1));
}

}  // namespace adrec::models
