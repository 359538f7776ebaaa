#include "adrec/train/ctrl.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "adrec/core/config.h"
#include "adrec/core/progress.h"
#include "adrec/models/layers.h"
#include "adrec/train/autocast.h"

namespace adrec::train {

Status ReadCtrlSettings(Config& cfg, CtrlSettings* s) {
  if (cfg.KeysOf("ctrl").empty()) return Status::Ok();
  const std::string src = cfg.source() + ": ";
  ADREC_RETURN_IF_ERROR(cfg.Require("ctrl.text_fields", &s->text_fields));
  ADREC_RETURN_IF_ERROR(cfg.Get("ctrl.epochs", &s->epochs));
  ADREC_RETURN_IF_ERROR(cfg.Get("ctrl.temperature", &s->temperature));
  ADREC_RETURN_IF_ERROR(cfg.Get("ctrl.dim", &s->dim));
  ADREC_RETURN_IF_ERROR(cfg.Get("ctrl.lr", &s->lr));
  int64_t batch = static_cast<int64_t>(s->batch_size);
  ADREC_RETURN_IF_ERROR(cfg.Get("ctrl.batch_size", &batch));
  ADREC_RETURN_IF_ERROR(cfg.Get("ctrl.representation", &s->representation));
  if (s->text_fields.empty()) return InvalidArgumentError(src + "ctrl.text_fields must name at least one text field");
  if (s->epochs < 1) return InvalidArgumentError(src + "ctrl.epochs must be >= 1");
  if (!(s->temperature > 0)) return InvalidArgumentError(src + "ctrl.temperature must be > 0");
  if (s->dim < 1) return InvalidArgumentError(src + "ctrl.dim must be >= 1");
  if (!(s->lr > 0)) return InvalidArgumentError(src + "ctrl.lr must be > 0");
  // InfoNCE needs other samples in the batch as negatives.
  if (batch != 0 && (batch < 2 || batch > (1 << 20))) return InvalidArgumentError(src + "ctrl.batch_size must be 0 or in [2, 1048576]");
  s->batch_size = static_cast<size_t>(batch);
  if (s->representation != "model" && s->representation != "embeddings") {
    return InvalidArgumentError(src + "ctrl.representation '" + s->representation + "' is not one of model, embeddings");
  }
  return Status::Ok();
}

StatusOr<data::FeatureSpec> TakeCtrlFields(data::FeatureSpec* spec, const CtrlSettings& s, const std::string& source) {
  data::FeatureSpec text;
  text.targets = spec->targets;
  text.sample_actions = spec->sample_actions;
  for (const std::string& name : s.text_fields) {
    auto it = std::find_if(spec->fields.begin(), spec->fields.end(), [&](const data::FieldSpec& f) { return f.name == name; });
    if (it == spec->fields.end()) {
      return InvalidArgumentError(source + ": ctrl.text_fields names '" + name + "', which is not a field of [features]" +
                                  (std::count(s.text_fields.begin(), s.text_fields.end(), name) > 1 ? " (named twice)" : ""));
    }
    if (it->kind != data::FieldKind::kText) {
      return InvalidArgumentError(source + ": ctrl.text_fields names '" + name + "', a " +
                                  std::string(data::FieldKindName(it->kind)) + " field; CTRL reads text fields only");
    }
    text.fields.push_back(std::move(*it));
    spec->fields.erase(it);
  }
  return text;
}

namespace {

// [B, Σ widths] on `device`: the batch's text fields side by side.
torch::Tensor TextMatrix(const data::Batch& b, const data::FeatureSpec& spec, torch::Device device) {
  std::vector<torch::Tensor> parts;
  const auto fields = spec.TextFields();
  const int64_t B = static_cast<int64_t>(b.size);
  for (size_t k = 0; k < fields.size(); ++k) {
    parts.push_back(torch::from_blob(const_cast<float*>(b.text[k].data()), {B, fields[k]->width}, torch::kFloat32));
  }
  return torch::cat(parts, 1).to(device);
}

}  // namespace

StatusOr<nlohmann::ordered_json> PretrainCtrl(RankingModel& m, const data::Dataset& ds, const data::FeatureSpec& text_spec,
                                              const data::SampleSet& train, size_t default_batch, const CtrlSettings& s,
                                              const CtrlRunOptions& o) {
  int64_t text_width = 0;
  for (const data::FieldSpec* f : text_spec.TextFields()) text_width += f->width;
  if (text_width == 0) return FailedPreconditionError("ctrl: the text fields have no width (unbound spec?)");
  data::BatchStreamOptions so;
  so.batch_size = s.batch_size > 0 ? s.batch_size : default_batch;
  so.shuffle = true;
  so.seed = o.seed;
  so.threads = o.threads;
  // A short last batch has few negatives; drop it unless it is the only one.
  so.drop_last = train.size() >= 2 * so.batch_size;
  // Two streams with one seed hand out the same samples in the same order: one builds the
  // model's inputs, the other the text side.
  data::BatchStream tabular(ds, m.spec, train, so);
  data::BatchStream text(ds, text_spec, train, so);
  const int64_t per_epoch = static_cast<int64_t>(tabular.batches_per_epoch());
  ProgressOptions po;
  po.unit = "samples";
  po.enabled = o.show_progress;
  Progress progress("ctrl pretrain", static_cast<uint64_t>(per_epoch * s.epochs) * so.batch_size, po);

  torch::nn::Linear tab_head{nullptr}, text_head{nullptr};
  std::unique_ptr<torch::optim::Adam> opt;
  m.net->train();
  data::Batch tb, xb;
  int64_t step = 0;
  double first_loss = NAN, last_loss = NAN, loss_sum = 0;
  int64_t loss_n = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < s.epochs; ++epoch) {
    tabular.StartEpoch(static_cast<uint64_t>(epoch));
    text.StartEpoch(static_cast<uint64_t>(epoch));
    loss_sum = 0;
    loss_n = 0;
    while (tabular.Next(&tb)) {
      if (!text.Next(&xb) || xb.event != tb.event) return InternalError("ctrl: the text and tabular batches diverged");
      if (tb.size < 2) continue;
      auto lookup = m.embeddings->Forward(tb, /*train=*/true, step);
      torch::Tensor rep = MaybeAutocastBf16(o.autocast, [&] {
        return s.representation == "model" ? m.net->represent(lookup.input) : models::ConcatFeatures(lookup.input);
      });
      torch::Tensor x = TextMatrix(xb, text_spec, m.device);
      if (!tab_head) {
        torch::manual_seed(o.seed + 1);
        tab_head = torch::nn::Linear(rep.size(1), s.dim);
        text_head = torch::nn::Linear(text_width, s.dim);
        tab_head->to(m.device);
        text_head->to(m.device);
        std::vector<torch::Tensor> params = m.net->parameters();
        for (auto& p : tab_head->parameters()) params.push_back(p);
        for (auto& p : text_head->parameters()) params.push_back(p);
        opt = std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(s.lr));
      }
      namespace F = torch::nn::functional;
      torch::Tensor zt = F::normalize(tab_head->forward(rep), F::NormalizeFuncOptions().dim(1));
      torch::Tensor zx = F::normalize(text_head->forward(x), F::NormalizeFuncOptions().dim(1));
      torch::Tensor logits = zt.mm(zx.t()) / s.temperature;
      torch::Tensor diag = torch::arange(logits.size(0), torch::TensorOptions().dtype(torch::kLong).device(m.device));
      // Symmetric InfoNCE: each sample's representation picks its own text among the batch's,
      // and each text its own sample.
      torch::Tensor loss = 0.5 * (F::cross_entropy(logits, diag) + F::cross_entropy(logits.t(), diag));
      const double value = loss.item<double>();
      if (!std::isfinite(value)) {
        return DataLossError("ctrl: the contrastive loss is " + std::to_string(value) + " at step " + std::to_string(step) +
                             " (lower ctrl.lr or raise ctrl.temperature)");
      }
      opt->zero_grad();
      loss.backward();
      opt->step();
      m.embeddings->Step(lookup, step);
      if (step == 0) first_loss = value;
      loss_sum += value;
      ++loss_n;
      ++step;
      progress.Add(tb.size);
      if (o.stop != nullptr && o.stop->load()) {
        progress.Finish();
        return Status(StatusCode::kCancelled, "interrupted during CTRL pretraining (step " + std::to_string(step) +
                                                  "); it keeps no checkpoint: run the command again");
      }
    }
    last_loss = loss_n > 0 ? loss_sum / static_cast<double>(loss_n) : NAN;
  }
  progress.Finish();
  m.net->zero_grad();
  if (step == 0) return FailedPreconditionError("ctrl: the train part has fewer than 2 samples");
  nlohmann::ordered_json j;
  j["text_fields"] = s.text_fields;
  j["text_width"] = text_width;
  j["representation"] = s.representation;
  j["dim"] = s.dim;
  j["temperature"] = s.temperature;
  j["epochs"] = s.epochs;
  j["steps"] = step;
  j["batch_size"] = so.batch_size;
  j["first_loss"] = first_loss;
  j["last_epoch_loss"] = last_loss;
  // log(B) is the loss of a representation that knows nothing: the gap is what was aligned.
  j["chance_loss"] = std::log(static_cast<double>(so.batch_size));
  j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return j;
}

}  // namespace adrec::train
