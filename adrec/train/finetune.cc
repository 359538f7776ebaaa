#include "adrec/train/finetune.h"

namespace adrec::train {

StatusOr<Finetuner> Finetuner::Create(torch::nn::Module& net, const FinetuneOptions& o, uint64_t seed) {
  if (o.mode != "full" && o.mode != "head" && o.mode != "lora") {
    return InvalidArgumentError("--finetune '" + o.mode + "' is not one of full, head, lora");
  }
  if (o.lora_rank < 1) return InvalidArgumentError("--lora-rank must be at least 1");
  Finetuner f;
  f.options_ = o;
  torch::manual_seed(seed);
  for (auto& item : net.named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    bool train = o.mode == "full";
    if (o.mode == "head") train = name.rfind("out.", 0) == 0 || name.rfind("towers.", 0) == 0;
    if (o.mode == "lora" && p.dim() == 2) {
      torch::NoGradGuard no_grad;
      const int64_t rows = p.size(0), cols = p.size(1), rank = std::min<int64_t>(o.lora_rank, std::min(rows, cols));
      Adapter ad{p, p.detach().clone(), torch::randn({rank, cols}, p.options()) / std::sqrt(static_cast<double>(cols)),
                 torch::zeros({rows, rank}, p.options())};
      ad.a.requires_grad_(true);
      ad.b.requires_grad_(true);
      f.trainable_.push_back(ad.a);
      f.trainable_.push_back(ad.b);
      f.adapters_.push_back(std::move(ad));
      f.frozen_ += p.numel();
      continue;  // W keeps requires_grad: its gradient feeds the adapters
    }
    if (train) {
      f.trainable_.push_back(p);
    } else {
      p.requires_grad_(false);
      f.frozen_ += p.numel();
    }
  }
  if (f.trainable_.empty()) {
    return InvalidArgumentError("--finetune " + o.mode + ": the model has no " +
                                (o.mode == "head" ? std::string("output layer (out.*, towers.*)") : "matrix to adapt") +
                                "; use --finetune full");
  }
  return f;
}

void Finetuner::BeforeStep() {
  for (Adapter& ad : adapters_) {
    const torch::Tensor g = ad.w.grad();
    if (!g.defined()) continue;
    ad.a.mutable_grad() = ad.b.detach().t().mm(g);
    ad.b.mutable_grad() = g.mm(ad.a.detach().t());
    ad.w.mutable_grad() = torch::Tensor();
  }
}

void Finetuner::AfterStep() {
  torch::NoGradGuard no_grad;
  for (Adapter& ad : adapters_) ad.w.copy_(ad.w0 + ad.b.mm(ad.a));
}

nlohmann::ordered_json Finetuner::Summary() const {
  int64_t n = 0;
  for (const torch::Tensor& t : trainable_) n += t.numel();
  nlohmann::ordered_json j = {{"mode", options_.mode}, {"trainable_params", n}, {"frozen_params", frozen_},
                              {"dense_optimizer_state_bytes", n * 2 * 4}, {"embeddings_trained", !embeddings_frozen()}};
  if (options_.mode == "lora") j["lora_rank"] = options_.lora_rank;
  return j;
}

}  // namespace adrec::train
