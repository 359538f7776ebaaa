#include "adrec/models/deepfm.h"

#include <torch/torch.h>

#include "adrec/models/fm.h"
#include "adrec/models/per_sample.h"

namespace adrec::models {

StatusOr<DeepFmOptions> ReadDeepFmOptions(Config& cfg, std::string_view section) {
  DeepFmOptions o;
  ADREC_RETURN_IF_ERROR(ReadMlpOptions(cfg, section, "hidden", &o.mlp));
  return o;
}

DeepFmModel::DeepFmModel(const ModelShape& shape, const DeepFmOptions& options) : shape_(shape) {
  if (const int64_t side = SideWidth(shape); side > 0) {
    dense_proj_ = register_module("dense_proj", torch::nn::Linear(side, shape.sparse_dims.at(0)));
  }
  mlp_ = register_module("mlp", Mlp(FeatureWidth(shape), options.mlp));
  const int64_t fm_width = 1 + shape.sparse_dims.at(0);
  out_ = register_module("out", torch::nn::Linear(fm_width + mlp_->out_dim(), static_cast<int64_t>(shape.targets.size())));
  torch::NoGradGuard no_grad;
  out_->weight.narrow(1, 0, fm_width).fill_(1.0);
}

torch::Tensor DeepFmModel::forward(const embedding::ModelInput& input) {
  CheckInput(shape_, input, "deepfm");
  TORCH_CHECK(input.linear.defined(), "deepfm: ModelInput::linear is undefined; build the embedding collection with linear_terms");
  torch::Tensor fm = FmBiInteraction(FmFields(input, dense_proj_));
  torch::Tensor deep = mlp_->forward(ConcatFeatures(input));
  return TapedLinear(*out_, torch::cat({input.linear, fm, deep}, 1));
}

}  // namespace adrec::models
