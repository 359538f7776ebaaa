#include "adrec/train/seq_ranker.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>

#include "adrec/core/config.h"
#include "adrec/core/file.h"
#include "adrec/core/log_line.h"
#include "adrec/core/progress.h"
#include "adrec/core/text.h"
#include "adrec/data/dataset_io.h"
#include "adrec/data/event_sequences.h"
#include "adrec/eval/ctr_report.h"
#include "adrec/models/hstu_ranker.h"
#include "adrec/text/tensor_io.h"
#include "adrec/train/autocast.h"
#include "adrec/train/ranking_model.h"
#include "adrec/train/run_files.h"
#include "adrec/train/train_config.h"

#ifndef ADREC_VERSION
#define ADREC_VERSION "dev"
#endif

namespace adrec::train {
namespace {

using nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
static_assert(data::kNumActions < models::kNumActionTokens, "action tokens must cover every data::Action");

constexpr const char* kKind = "sequence_ranking";
constexpr const char* kModelPrefix = "model/";  // tensor names in bundles and checkpoints

struct RankerSettings {
  int epochs = 10;
  int64_t batch_size = 32;  // windows
  double lr = 1e-3, weight_decay = 0.0, clip_norm = 1.0;
  int patience = 2;
  std::string primary_target;
  bool bf16 = true;
  int64_t max_len = 256;
};

Status ReadRankerSettings(Config& cfg, RankerSettings* s) {
  ADREC_RETURN_IF_ERROR(cfg.Get("train.epochs", &s->epochs));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.batch_size", &s->batch_size));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.lr", &s->lr));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.weight_decay", &s->weight_decay));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.clip_norm", &s->clip_norm));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.patience", &s->patience));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.primary_target", &s->primary_target));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.bf16", &s->bf16));
  ADREC_RETURN_IF_ERROR(cfg.Get("model.max_len", &s->max_len));
  const std::string src = cfg.source() + ": ";
  if (s->epochs <= 0 || s->batch_size <= 0) return InvalidArgumentError(src + "train.epochs and train.batch_size must be positive");
  if (!(s->lr > 0)) return InvalidArgumentError(src + "train.lr must be positive");
  if (s->clip_norm < 0 || s->patience < 0) return InvalidArgumentError(src + "train.clip_norm and train.patience must be >= 0");
  if (s->max_len < 2 || s->max_len > 65536) return InvalidArgumentError(src + "model.max_len must be in [2, 65536]");
  return Status::Ok();
}

// What a run needs besides the model: the dataset, its samples with labels, the split.
struct RankerData {
  data::Dataset ds;
  data::FeatureSpec spec;
  data::Split split;
  data::SampleSet samples;  // every sample event, all parts
  std::vector<int64_t> sample_of;
  int primary = 0;
};

StatusOr<RankerData> LoadRankerData(const std::filesystem::path& dir, data::FeatureSpec spec,
                                    const data::SplitOptions& split_options, const std::filesystem::path& split_dir,
                                    const std::string& primary_target) {
  RankerData d;
  ADREC_ASSIGN_OR_RETURN(d.ds, data::ReadDataset(dir));
  if (!split_dir.empty()) {
    ADREC_ASSIGN_OR_RETURN(d.split, data::ReadSplit(split_dir, d.ds));
  } else {
    ADREC_ASSIGN_OR_RETURN(d.split, data::MakeSplit(d.ds, split_options));
  }
  ADREC_RETURN_IF_ERROR(spec.Bind(d.ds));
  if (spec.targets.empty()) return InvalidArgumentError("hstu_ranker: [features] declares no targets");
  d.primary = primary_target.empty() ? 0 : spec.TargetIndex(primary_target);
  if (d.primary < 0) return InvalidArgumentError("train.primary_target '" + primary_target + "' is not a target");
  ADREC_ASSIGN_OR_RETURN(d.samples, data::MakeSamples(d.ds, spec, nullptr, data::SplitPart::kTrain));
  d.sample_of = data::SampleIndexOfEvents(d.ds, d.samples);
  d.spec = std::move(spec);
  return d;
}

torch::Tensor Int64(std::vector<int64_t>& v, int64_t rows, int64_t cols, const torch::Device& device) {
  return torch::from_blob(v.data(), {rows, cols}, torch::kInt64).to(device);
}

models::EventTokens Tokens(data::EventBatch& b, const torch::Device& device) {
  return {Int64(b.items, b.batch, b.length, device), Int64(b.actions, b.batch, b.length, device),
          Int64(b.scenes, b.batch, b.length, device), Int64(b.slots, b.batch, b.length, device),
          Int64(b.hours, b.batch, b.length, device),  Int64(b.times, b.batch, b.length, device),
          Int64(b.users, b.batch, 1, device).view({-1})};
}

// Scores every sample of `part` once and reports it as EvaluateRanking does.
ordered_json Report(models::HstuRanker& model, const RankerData& d, data::SplitPart part, int64_t batch_size,
                    const torch::Device& device) {
  torch::NoGradGuard no_grad;
  model->eval();
  const std::vector<data::EventWindow> windows =
      data::MakeEventWindows(d.ds, d.sample_of, d.split, part, model->shape().max_len);
  eval::CtrPredictions p;
  for (const auto& t : d.spec.targets) p.targets.push_back(t.name);
  p.scene_names = d.ds.scenes;
  p.primary = d.primary;
  const bool with_truth = TruthMatchesPrimary(d.ds, d.spec, d.primary);
  data::EventBatch b;
  for (size_t begin = 0; begin < windows.size(); begin += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(windows.size(), begin + static_cast<size_t>(batch_size));
    data::BuildEventBatch(d.ds, d.samples, d.sample_of, d.split, part,
                          std::span<const data::EventWindow>(windows.data() + begin, end - begin), &b);
    torch::Tensor prob = torch::sigmoid(model->forward(Tokens(b, device)).to(torch::kFloat32)).cpu().contiguous();
    const float* pr = prob.data_ptr<float>();
    const int64_t T = b.targets;
    for (size_t at = 0; at < b.sample.size(); ++at) {
      const int64_t s = b.sample[at];
      if (s < 0) continue;
      const uint64_t e = d.samples.events[static_cast<size_t>(s)];
      p.pred.insert(p.pred.end(), pr + at * T, pr + (at + 1) * T);
      p.labels.insert(p.labels.end(), b.labels.begin() + static_cast<int64_t>(at * T),
                      b.labels.begin() + static_cast<int64_t>((at + 1) * T));
      p.mask.insert(p.mask.end(), b.mask.begin() + static_cast<int64_t>(at * T), b.mask.begin() + static_cast<int64_t>((at + 1) * T));
      p.user.push_back(d.ds.events.user[e]);
      p.scene.push_back(d.ds.events.scene[e]);
      if (with_truth) p.truth.push_back(d.ds.events.truth[e]);
    }
  }
  model->train();
  return eval::CtrReport(p);
}

// Codes [rows + offset, F] of the named categorical (vocabulary codes) or u32 (taxonomy nodes:
// their own codes) columns of `table`, row r + offset for table row r; each one's size.
Status AttributeCodes(Config& cfg, const std::string& kind, const data::Table& table, const std::string& dataset,
                      const std::vector<std::string>& names, int64_t offset, torch::Tensor* codes_out,
                      std::vector<int64_t>* sizes) {
  if (names.empty()) return Status::Ok();
  const int64_t F = static_cast<int64_t>(names.size()), rows = static_cast<int64_t>(table.rows());
  torch::Tensor codes = torch::zeros({rows + offset, F}, torch::kInt64);
  auto acc = codes.accessor<int64_t, 2>();
  for (int64_t f = 0; f < F; ++f) {
    const std::string& name = names[static_cast<size_t>(f)];
    const data::Column* c = table.Find(name);
    if (c == nullptr || (c->type != data::ColumnType::kCategorical && c->type != data::ColumnType::kUInt32)) {
      return InvalidArgumentError(cfg.source() + ": model." + kind + "_features: '" + name +
                                  "' is not a categorical or u32 column of the " + kind + " table of dataset '" + dataset + "'");
    }
    int64_t size = c->vocab ? static_cast<int64_t>(c->vocab->size()) : 0;
    for (int64_t r = 0; r < rows && r < static_cast<int64_t>(c->u32.size()); ++r) {
      acc[r + offset][f] = c->u32[static_cast<size_t>(r)];
      size = std::max<int64_t>(size, static_cast<int64_t>(c->u32[static_cast<size_t>(r)]) + 1);
    }
    sizes->push_back(std::max<int64_t>(1, size));
  }
  *codes_out = codes;
  return Status::Ok();
}

// The model a config and a dataset shape describe (the bundle rebuilds it the same way).
StatusOr<models::HstuRanker> BuildRanker(Config& cfg, const data::Dataset& ds, int64_t targets, int64_t max_len) {
  ADREC_ASSIGN_OR_RETURN(models::HstuRankerOptions o, models::ReadHstuRankerOptions(cfg, "model"));
  models::HstuRankerShape shape;
  shape.num_items = static_cast<int64_t>(ds.num_items());
  shape.num_scenes = static_cast<int64_t>(std::max<size_t>(1, ds.scenes.size()));
  shape.max_len = max_len;
  shape.targets = targets;
  ADREC_RETURN_IF_ERROR(AttributeCodes(cfg, "item", ds.item_table, ds.info.name, o.item_features, 1, &shape.item_codes,
                                       &shape.item_feature_sizes));
  ADREC_RETURN_IF_ERROR(AttributeCodes(cfg, "user", ds.user_table, ds.info.name, o.user_features, 0, &shape.user_codes,
                                       &shape.user_feature_sizes));
  return models::HstuRanker(shape, o);
}

StatusOr<ordered_json> RunRanker(const TrainOptions& o) {
  if (!o.resume && std::filesystem::exists(o.out / kBundleManifestFile) && !o.overwrite) {
    return AlreadyExistsError("bundle " + o.out.string() + " exists; pass --overwrite to replace it or --resume to continue it");
  }
  ADREC_ASSIGN_OR_RETURN(std::string config_text, ReadFile(o.config));
  ADREC_ASSIGN_OR_RETURN(Config cfg, ParseTrainConfig(config_text, o.config.string(), o.model));
  const uint64_t config_hash = TrainConfigHash(config_text, o.model);
  std::string model_name;
  ADREC_RETURN_IF_ERROR(cfg.Require("model.name", &model_name));
  RankerSettings s;
  ADREC_RETURN_IF_ERROR(ReadRankerSettings(cfg, &s));
  data::SplitOptions split_options;
  ADREC_RETURN_IF_ERROR(ReadSplitOptions(cfg, &split_options));
  ADREC_ASSIGN_OR_RETURN(data::FeatureSpec spec, data::FeatureSpec::FromConfig(cfg));
  ADREC_ASSIGN_OR_RETURN(torch::Device device, ParseDevice(o.device));
  if (o.threads > 0) at::set_num_threads(o.threads);
  LogInfo("loading " + o.data.string());
  ADREC_ASSIGN_OR_RETURN(RankerData d, LoadRankerData(o.data, spec, split_options, o.split_dir, s.primary_target));
  torch::manual_seed(o.seed);
  ADREC_ASSIGN_OR_RETURN(models::HstuRanker model,
                         BuildRanker(cfg, d.ds, static_cast<int64_t>(d.spec.targets.size()), s.max_len));
  ADREC_RETURN_IF_ERROR(cfg.CheckNoUnknownKeys());
  // Each output starts at its train base rate, as the CTR trainer's do.
  InitOutputBias(*model, BaseRates(d.samples, [&](size_t i) {
                   return d.split.PartOf(d.samples.events[i]) == data::SplitPart::kTrain;
                 }));
  model->to(device);
  model->train();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(s.lr).weight_decay(s.weight_decay));

  const std::vector<data::EventWindow> all_windows =
      data::MakeEventWindows(d.ds, d.sample_of, d.split, data::SplitPart::kTrain, s.max_len);
  std::vector<data::EventWindow> windows;
  if (all_windows.empty()) return FailedPreconditionError(o.data.string() + ": no train sample to learn from");
  std::vector<float> weights;
  for (const auto& t : d.spec.targets) weights.push_back(t.weight);
  const torch::Tensor target_weights = torch::tensor(weights).to(device);
  LogInfo(model_name + ": " + std::to_string(all_windows.size()) + " train windows of up to " + std::to_string(s.max_len) +
          " events, " + std::to_string(d.spec.targets.size()) + " targets, split " + d.split.method);

  std::error_code ec;
  const std::filesystem::path checkpoint = o.out / "checkpoint";
  if (!o.resume && o.overwrite) {
    std::filesystem::remove(o.out / "metrics.jsonl", ec);
    std::filesystem::remove_all(checkpoint, ec);
  }
  std::filesystem::create_directories(o.out, ec);
  if (ec) return IoError("cannot create " + o.out.string() + ": " + ec.message());
  double best_auc = -1, trained_seconds = 0;
  int epochs = 0, best_epoch = -1, since_best = 0;
  int64_t steps = 0, windows_seen = 0;
  ordered_json best_valid;
  if (o.resume) {
    ADREC_ASSIGN_OR_RETURN(nlohmann::json j, ReadCheckpointJson(checkpoint, model_name, config_hash));
    epochs = j.value("epoch", 0);
    steps = j.value("step", int64_t{0});
    best_auc = j.value("best_auc", -1.0);
    best_epoch = j.value("best_epoch", -1);
    since_best = j.value("evals_since_best", 0);
    trained_seconds = j.value("trained_seconds", 0.0);
    windows_seen = j.value("windows_seen", int64_t{0});
    if (j.contains("best_valid")) best_valid = j["best_valid"];
    ADREC_RETURN_IF_ERROR(LoadCheckpointState(checkpoint, device, opt, [&](const auto& tensors, const std::string& source) {
      return LoadModuleTensors(*model, tensors, kModelPrefix, source);
    }));
    LogInfo("resuming after epoch " + std::to_string(epochs) + " (step " + std::to_string(steps) + ")");
  }
  const double seconds_before = trained_seconds;
  ProgressOptions po;
  po.unit = "windows";
  po.enabled = o.show_progress;
  Progress progress("train " + model_name, static_cast<uint64_t>(s.epochs) * all_windows.size(), po);
  progress.Add(static_cast<uint64_t>(epochs) * all_windows.size());
  const bool autocast = device.is_cuda() && s.bf16;
  const auto t0 = Clock::now();
  std::string stopped = "completed";
  data::EventBatch b;
  for (int epoch = epochs; epoch < s.epochs; ++epoch) {
    // Each epoch shuffles the windows afresh from its own seed, so a resumed run draws the same order.
    std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch));
    windows = all_windows;
    std::shuffle(windows.begin(), windows.end(), rng);
    double loss_sum = 0;
    int64_t loss_n = 0;
    for (size_t begin = 0; begin < windows.size(); begin += static_cast<size_t>(s.batch_size)) {
      if (o.stop != nullptr && o.stop->load()) {
        progress.Finish();
        return Status(StatusCode::kCancelled, "interrupted in epoch " + std::to_string(epoch + 1) +
                                                  "; the checkpoint after epoch " + std::to_string(epoch) + " is in " +
                                                  checkpoint.string() + "; --resume continues from there");
      }
      const size_t end = std::min(windows.size(), begin + static_cast<size_t>(s.batch_size));
      data::BuildEventBatch(d.ds, d.samples, d.sample_of, d.split, data::SplitPart::kTrain,
                            std::span<const data::EventWindow>(windows.data() + begin, end - begin), &b);
      torch::Tensor logits = MaybeAutocastBf16(autocast, [&] { return model->forward(Tokens(b, device)); });
      const int64_t T = b.targets;
      torch::Tensor labels = torch::from_blob(b.labels.data(), {b.batch * b.length, T}, torch::kFloat32).to(device);
      torch::Tensor mask = torch::from_blob(b.mask.data(), {b.batch * b.length, T}, torch::kFloat32).to(device);
      // Mean BCE per target over the impressions where it is defined, weighted-summed (the CTR trainer's loss).
      torch::Tensor per = torch::binary_cross_entropy_with_logits(logits.reshape({-1, T}), labels, mask, {}, at::Reduction::None);
      torch::Tensor loss = ((per.sum(0) / mask.sum(0).clamp_min(1.0)) * target_weights).sum();
      const double value = loss.item<double>();
      if (!std::isfinite(value)) {
        return DataLossError("hstu_ranker: the loss is " + std::to_string(value) + " at step " + std::to_string(steps + 1) +
                             "; the bundle keeps the best epoch so far (lower train.lr or set train.clip_norm)");
      }
      opt.zero_grad();
      loss.backward();
      if (s.clip_norm > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), s.clip_norm);
      opt.step();
      loss_sum += value;
      ++loss_n;
      ++steps;
      windows_seen += b.batch;
      progress.Add(static_cast<uint64_t>(b.batch));
    }
    epochs = epoch + 1;
    trained_seconds = seconds_before + std::chrono::duration<double>(Clock::now() - t0).count();
    ordered_json valid = Report(model, d, data::SplitPart::kValid, s.batch_size * 4, device);
    const double auc = valid.value("auc", -1.0);
    ordered_json line = {{"epoch", epochs}, {"step", steps}, {"train_loss", loss_n ? loss_sum / loss_n : 0.0},
                         {"elapsed_s", trained_seconds}, {"valid", valid}};
    std::ofstream(o.out / "metrics.jsonl", std::ios::app) << line.dump() << "\n";
    LogInfo("epoch " + std::to_string(epochs) + ": loss " + FixedDigits(loss_n ? loss_sum / loss_n : 0.0, 4) +
            ", valid auc " + FixedDigits(auc, 4));
    if (auc > best_auc) {
      best_auc = auc;
      best_epoch = epochs;
      since_best = 0;
      best_valid = valid;
      ordered_json m;
      m["format"] = "adrec-bundle";
      m["format_version"] = kBundleFormatVersion;
      m["kind"] = kKind;
      m["model"] = model_name;
      m["adrec_version"] = ADREC_VERSION;
      m["created_utc"] = NowUtc();
      m["targets"] = nlohmann::json::array();
      for (const auto& t : d.spec.targets) m["targets"].push_back(t.name);
      m["primary_target"] = d.spec.targets[static_cast<size_t>(d.primary)].name;
      m["feature_spec"] = d.spec.ToJson();
      m["config"] = config_text;
      m["split"] = SplitJson(split_options);
      if (!o.split_dir.empty()) m["split"]["dir"] = std::filesystem::absolute(o.split_dir).string();
      m["data"] = {{"name", d.ds.info.name}, {"items", d.ds.num_items()}, {"scenes", d.ds.scenes}};
      m["epoch"] = epochs;
      m["seed"] = o.seed;
      m["metrics"] = {{"valid", valid}};
      m["weights"] = kBundleWeightsFile;
      ADREC_RETURN_IF_ERROR(text::SaveTensors(o.out / kBundleWeightsFile, ModuleTensors(*model, kModelPrefix),
                                              {{"format", "pt"}, {"adrec_model", model_name}}));
      ADREC_RETURN_IF_ERROR(AtomicWriteFile(o.out / kBundleManifestFile, m.dump(2) + "\n"));
    } else if (++since_best > s.patience) {
      stopped = "early_stopping";
    }
    ordered_json tj = {{"model", model_name}, {"config_hash", config_hash}, {"epoch", epochs}, {"step", steps},
                       {"best_auc", best_auc}, {"best_epoch", best_epoch}, {"evals_since_best", since_best},
                       {"trained_seconds", trained_seconds}, {"windows_seen", windows_seen}, {"best_valid", best_valid}};
    ADREC_RETURN_IF_ERROR(WriteCheckpointDir(checkpoint, ModuleTensors(*model, kModelPrefix), opt, tj));
    if (stopped != "completed") break;
    if (o.max_steps > 0 && steps >= o.max_steps) {
      stopped = "max_steps";
      break;
    }
  }
  progress.Finish();
  ordered_json summary;
  summary["bundle"] = o.out.string();
  summary["model"] = model_name;
  summary["steps"] = steps;
  summary["epochs"] = epochs;
  summary["best_epoch"] = best_epoch;
  summary["stopped"] = stopped;
  summary["train_seconds"] = trained_seconds;
  summary["windows_per_s"] = trained_seconds > 0 ? static_cast<double>(windows_seen) / trained_seconds : 0.0;
  if (stopped == "max_steps") return summary;  // to be resumed: no test yet
  EvalOptions eo = EvalOptionsFor(o);
  ADREC_ASSIGN_OR_RETURN(ordered_json test, EvaluateSequenceRanker(eo));
  ADREC_RETURN_IF_ERROR(AddFinalMetrics(o.out, best_valid, "test", test, &summary));
  return summary;
}

}  // namespace

StatusOr<ordered_json> TrainSequenceRanker(const TrainOptions& options) {
  try {
    return RunRanker(options);
  } catch (const c10::Error& e) {
    return InternalError(std::string("libtorch: ") + e.what_without_backtrace());
  }
}

StatusOr<ordered_json> EvaluateSequenceRanker(const EvalOptions& o) {
  try {
    if (!o.protocol.empty() && o.protocol != "ctr") {
      return InvalidArgumentError("--protocol " + o.protocol + ": an hstu_ranker bundle is evaluated with --protocol ctr");
    }
    data::SplitPart part = data::SplitPart::kTest;
    if (o.part == "valid") part = data::SplitPart::kValid;
    else if (o.part == "train") part = data::SplitPart::kTrain;
    else if (o.part != "test") return InvalidArgumentError("--split " + o.part + ": hstu_ranker evaluates test, valid or train");
    ADREC_ASSIGN_OR_RETURN(torch::Device device, ParseDevice(o.device));
    if (o.threads > 0) at::set_num_threads(o.threads);
    ADREC_ASSIGN_OR_RETURN(nlohmann::json manifest, ReadBundleManifest(o.bundle, kKind));
    const std::string mpath = (o.bundle / kBundleManifestFile).string();
    if (!manifest.contains("config") || !manifest.contains("feature_spec")) return DataLossError(mpath + ": missing config or feature_spec");
    ADREC_ASSIGN_OR_RETURN(Config cfg, ParseTrainConfig(manifest["config"].get<std::string>(), mpath + " [config]",
                                                         manifest.value("model", "")));
    RankerSettings s;
    ADREC_RETURN_IF_ERROR(ReadRankerSettings(cfg, &s));
    ADREC_ASSIGN_OR_RETURN(data::FeatureSpec spec, data::FeatureSpec::FromJson(manifest["feature_spec"]));
    ADREC_ASSIGN_OR_RETURN(RankerData d, LoadRankerData(o.data, spec, SplitFromJson(manifest.value("split", nlohmann::json::object())),
                                                        EvalSplitDir(manifest, o.split_dir), manifest.value("primary_target", "")));
    const uint64_t items = manifest.value("data", nlohmann::json::object()).value("items", uint64_t{0});
    if (d.ds.num_items() != items) {
      return FailedPreconditionError("the bundle was trained on " + std::to_string(items) + " items; " + o.data.string() +
                                     " has " + std::to_string(d.ds.num_items()));
    }
    ADREC_ASSIGN_OR_RETURN(models::HstuRanker model,
                           BuildRanker(cfg, d.ds, static_cast<int64_t>(d.spec.targets.size()), s.max_len));
    const auto weights = o.bundle / kBundleWeightsFile;
    ADREC_ASSIGN_OR_RETURN(auto tensors, text::LoadTensors(weights, device));
    model->to(device);
    ADREC_RETURN_IF_ERROR(LoadModuleTensors(*model, tensors, kModelPrefix, weights.string()));
    ordered_json out;
    out["bundle"] = o.bundle.string();
    out["model"] = manifest.value("model", "");
    out["part"] = o.part;
    out.update(Report(model, d, part, s.batch_size * 4, device));
    return out;
  } catch (const c10::Error& e) {
    return InternalError(std::string("libtorch: ") + e.what_without_backtrace());
  }
}

}  // namespace adrec::train
