#include "adrec/models/dcnv2.h"

#include <torch/torch.h>

#include "adrec/core/config.h"
#include "adrec/models/per_sample.h"

namespace adrec::models {

StatusOr<DcnV2Options> ReadDcnV2Options(Config& cfg, std::string_view section) {
  DcnV2Options o;
  const std::string structure = OptionKey(section, "structure");
  ADREC_RETURN_IF_ERROR(cfg.Get(structure, &o.structure));
  if (o.structure != "stacked" && o.structure != "parallel") {
    return InvalidArgumentError(cfg.source() + ": key '" + structure + "' must be stacked or parallel, got '" + o.structure + "'");
  }
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "cross_layers", 0, &o.cross_layers));
  ADREC_RETURN_IF_ERROR(ReadInt(cfg, section, "low_rank", 0, &o.low_rank));
  ADREC_RETURN_IF_ERROR(ReadMlpOptions(cfg, section, "hidden", &o.mlp));
  return o;
}

DcnV2Model::DcnV2Model(const ModelShape& shape, const DcnV2Options& options) : shape_(shape), options_(options) {
  const int64_t width = FeatureWidth(shape);
  cross_ = register_module("cross", CrossNetV2(width, options.cross_layers, options.low_rank));
  mlp_ = register_module("mlp", Mlp(width, options.mlp));
  const int64_t head = options.structure == "parallel" ? width + mlp_->out_dim() : mlp_->out_dim();
  out_ = register_module("out", torch::nn::Linear(head, static_cast<int64_t>(shape.targets.size())));
}

torch::Tensor DcnV2Model::forward(const embedding::ModelInput& input) { return TapedLinear(*out_, represent(input)); }

torch::Tensor DcnV2Model::represent(const embedding::ModelInput& input) {
  CheckInput(shape_, input, "dcnv2");
  // The cross GEMMs and the MLP's first run on the aligned width (zero columns past the
  // features): the same function, up to twice as fast on CPU for odd widths such as Criteo's 429.
  const int64_t width = FeatureWidth(shape_);
  torch::Tensor x0 = ConcatFeatures(input, AlignedWidth(width));
  return options_.structure == "parallel" ? torch::cat({cross_->forward(x0).narrow(1, 0, width), mlp_->forward(x0)}, 1)
                                          : mlp_->forward(cross_->forward(x0));
}

}  // namespace adrec::models
