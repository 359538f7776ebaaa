#include "adrec/train/ranking_model.h"

#include <torch/torch.h>

#include "adrec/core/config.h"
#include "adrec/core/file.h"
#include "adrec/data/split.h"
#include "adrec/models/bundle.h"
#include "adrec/tensor/tensor_io.h"
#include "adrec/train/adversarial.h"
#include "adrec/train/losses.h"
#include "adrec/train/train_config.h"

namespace adrec::train {
namespace {

models::ModelShape ShapeOf(const data::FeatureSpec& spec, size_t num_scenes) {
  models::ModelShape shape;
  for (const data::FieldSpec* f : spec.SparseFields()) {
    const data::TableSpec* t = spec.FindTable(f->table.empty() ? f->name : f->table);
    shape.sparse_dims.push_back(t ? t->dim : 0);
    shape.sparse_names.push_back(f->name);
    shape.sparse_sources.push_back(f->source);
  }
  shape.dense_width = spec.DenseWidth();
  for (const data::FieldSpec* f : spec.TextFields()) {
    shape.text_dims.push_back(f->width);
    shape.text_names.push_back(f->name);
    shape.text_sources.push_back(f->source);
  }
  for (const data::TargetSpec& t : spec.targets) shape.targets.push_back(t.name);
  shape.num_scenes = static_cast<int>(std::max<size_t>(1, num_scenes));
  return shape;
}

}  // namespace

StatusOr<RankingModel> BuildRankingModel(const data::FeatureSpec& spec, std::vector<std::string> scenes, Config& cfg,
                                         const BuildOptions& options) {
  std::string name;
  ADREC_RETURN_IF_ERROR(cfg.Require("model.name", &name));
  RankingModel m;
  m.spec = spec;
  m.scenes = std::move(scenes);
  m.device = options.device;
  torch::manual_seed(options.seed);
  ADREC_ASSIGN_OR_RETURN(m.net, models::MakeRankingModel(name, ShapeOf(spec, m.scenes.size()), cfg, "model"));
  m.net->to(options.device);
  embedding::CollectionOptions co;
  co.table.optimizer = options.embedding_optimizer;
  co.table.device = options.device;
  co.table.seed = options.seed;
  co.linear_terms = m.net->wants_linear_terms();
  co.linear_optimizer = options.linear_optimizer;
  co.sharding = options.sharding;
  ADREC_ASSIGN_OR_RETURN(m.embeddings, embedding::EmbeddingCollection::Create(spec, co));
  return m;
}

std::vector<double> BaseRates(const data::SampleSet& samples, const std::function<bool(size_t)>& keep) {
  const size_t T = samples.size() > 0 ? samples.labels.size() / samples.size() : 0;
  std::vector<double> pos(T, 0.0), n(T, 0.0), rates(T, 0.5);
  for (size_t i = 0; i < samples.size(); ++i) {
    if (keep && !keep(i)) continue;
    for (size_t t = 0; t < T; ++t) {
      pos[t] += samples.labels[i * T + t] * samples.mask[i * T + t];
      n[t] += samples.mask[i * T + t];
    }
  }
  for (size_t t = 0; t < T; ++t) rates[t] = n[t] > 0 ? pos[t] / n[t] : 0.5;
  return rates;
}

bool InitOutputBias(torch::nn::Module& net, const std::vector<double>& base_rates) {
  torch::NoGradGuard no_grad;
  std::vector<float> logits;
  for (double p : base_rates) {
    const double q = std::clamp(p, 1e-6, 1.0 - 1e-6);
    logits.push_back(static_cast<float>(std::log(q / (1.0 - q))));
  }
  const int64_t T = static_cast<int64_t>(logits.size());
  auto params = net.named_parameters();
  if (auto* b = params.find("out.bias"); b != nullptr && b->numel() == T) {
    b->copy_(torch::tensor(logits).to(b->device()));
    return true;
  }
  bool any = false;
  for (int64_t t = 0; t < T; ++t) {
    if (auto* b = params.find("towers." + std::to_string(t) + ".out.bias"); b != nullptr && b->numel() == 1) {
      b->fill_(logits[t]);
      any = true;
    }
  }
  return any;
}

std::vector<std::pair<std::string, torch::Tensor>> ModelTensors(const RankingModel& m, bool with_optimizer) {
  std::vector<std::pair<std::string, torch::Tensor>> out = tensor::ModuleTensors(*m.net, "dense/");
  for (auto& [name, t] : m.embeddings->State(with_optimizer)) out.emplace_back("emb/" + name, t);
  return out;
}

Status LoadModelTensors(RankingModel& m, const std::map<std::string, torch::Tensor>& tensors, bool with_optimizer,
                        const std::string& source) {
  ADREC_RETURN_IF_ERROR(tensor::LoadModuleTensors(*m.net, tensors, "dense/", source));
  std::map<std::string, torch::Tensor> emb;
  for (const auto& [name, t] : tensors) {
    if (name.rfind("emb/", 0) == 0) emb.emplace(name.substr(4), t);
  }
  Status s = m.embeddings->LoadState(emb, with_optimizer);
  if (!s.ok()) return Status(s.code(), source + ": " + s.message());
  return Status::Ok();
}

StatusOr<LoadedBundle> LoadBundle(const std::filesystem::path& dir, torch::Device device,
                                  const embedding::SparseOptimizerOptions* sparse) {
  const auto manifest_path = dir / models::kBundleManifestFile;
  LoadedBundle b;
  ADREC_ASSIGN_OR_RETURN(b.manifest, models::ReadBundleManifest(dir, models::kRankingBundle));
  const nlohmann::json& j = b.manifest;
  if (!j.contains("feature_spec") || !j.contains("config") || !j.contains("scenes")) {
    return DataLossError(manifest_path.string() + ": missing feature_spec, config or scenes");
  }
  ADREC_ASSIGN_OR_RETURN(data::FeatureSpec spec, data::FeatureSpec::FromJson(j["feature_spec"]));
  ADREC_ASSIGN_OR_RETURN(std::string config_text, models::ManifestString(j, dir, "config"));
  ADREC_ASSIGN_OR_RETURN(Config cfg, ParseTrainConfig(config_text, manifest_path.string() + " [config]", "", ManifestSettings(j)));
  if (!j["scenes"].is_array()) return DataLossError(manifest_path.string() + ": \"scenes\" is not a list of names");
  BuildOptions bo;
  bo.device = device;
  if (sparse) bo.embedding_optimizer = *sparse;
  ADREC_ASSIGN_OR_RETURN(b.model, BuildRankingModel(spec, j["scenes"].get<std::vector<std::string>>(), cfg, bo));
  ADREC_ASSIGN_OR_RETURN(auto tensors, models::ReadBundleWeights(dir, device));
  ADREC_RETURN_IF_ERROR(
      LoadModelTensors(b.model, tensors, /*with_optimizer=*/false, (dir / models::kBundleWeightsFile).string()));
  b.model.net->eval();
  return b;
}

data::ActionMask BundleHistoryMask(const nlohmann::json& manifest, const data::Dataset& ds) {
  const data::SplitOptions so = SplitFromJson(manifest.value("split", nlohmann::json::object()));
  if (so.positive_actions.empty()) return data::DefaultPositiveMask(ds);
  data::ActionMask m = 0;
  for (data::Action a : so.positive_actions) m |= data::ActionBit(a);
  return m;
}

Status CheckBundleData(const nlohmann::json& manifest, const std::filesystem::path& bundle, const data::Dataset& ds) {
  const nlohmann::json d = manifest.value("data", nlohmann::json::object());
  const uint64_t users = d.value("users", uint64_t{0}), items = d.value("items", uint64_t{0});
  if ((users && users != ds.num_users()) || (items && items != ds.num_items())) {
    return InvalidArgumentError(bundle.string() + " was trained on a dataset of " + std::to_string(users) + " users and " +
                                std::to_string(items) + " items; --data has " + std::to_string(ds.num_users()) + " and " +
                                std::to_string(ds.num_items()) + ": use the dataset it was trained on");
  }
  return Status::Ok();
}

StatusOr<PartSamples> SamplesOfPart(const nlohmann::json& manifest, const std::filesystem::path& split_dir,
                                    const data::Dataset& ds, const data::FeatureSpec& spec, const std::string& part) {
  PartSamples out;
  data::SplitPart p = data::SplitPart::kTest;
  if (part != "all") {
    if (part == "train") p = data::SplitPart::kTrain;
    else if (part == "valid") p = data::SplitPart::kValid;
    else if (part != "test") return InvalidArgumentError("--split '" + part + "' is not one of test, valid, train, all");
    ADREC_ASSIGN_OR_RETURN(out.split, EvalSplit(manifest, split_dir, ds));
  }
  ADREC_ASSIGN_OR_RETURN(out.samples, data::MakeSamples(ds, spec, out.split ? &*out.split : nullptr, p));
  return out;
}

const data::TableSpec* QuantizedTable(const data::FeatureSpec& spec) {
  for (const data::TableSpec& t : spec.tables) {
    if (t.storage_bits != 32) return &t;
  }
  return nullptr;
}

models::InputGroups InputGroupsOf(const RankingModel& m) {
  models::InputGroups g;
  for (const data::FieldSpec* f : m.spec.SparseFields()) g.sparse.push_back(f->name);
  for (const data::FieldSpec* f : m.spec.DenseFields()) g.dense.emplace_back(f->name, f->width);
  for (const data::FieldSpec* f : m.spec.TextFields()) g.text.push_back(f->name);
  g.linear = m.net->wants_linear_terms();
  return g;
}

bool TruthMatchesPrimary(const data::Dataset& ds, const data::FeatureSpec& spec, int primary) {
  if (!ds.has_truth() || primary < 0 || primary >= static_cast<int>(spec.targets.size())) return false;
  const data::TargetSpec& t = spec.targets[primary];
  return t.rule == data::TargetRule::kFollows && t.action == data::Action::kClick && t.given.empty() &&
         spec.sample_actions == data::ActionBit(data::Action::kImpression);
}

eval::CtrPredictions Predict(RankingModel& m, const data::Dataset& ds, const data::SampleSet& samples,
                             const PredictOptions& options) {
  torch::NoGradGuard no_grad;
  m.net->eval();
  eval::CtrPredictions p;
  for (const auto& t : m.spec.targets) p.targets.push_back(t.name);
  p.scene_names = ds.scenes;
  p.primary = options.primary;
  const size_t T = p.targets.size();
  p.pred.reserve(samples.size() * T);
  data::BatchStreamOptions so;
  so.batch_size = options.batch_size;
  so.shuffle = false;
  so.threads = options.threads;
  data::BatchStream stream(ds, m.spec, samples, so);
  stream.StartEpoch(0);
  data::Batch batch;
  while (stream.Next(&batch)) {
    auto lookup = m.embeddings->Forward(batch, /*train=*/false, /*step=*/0);
    embedding::ModelInput input = lookup.input;
    if (options.perturb != nullptr) {
      const auto dev = input.scene.device();
      const int64_t B = static_cast<int64_t>(batch.size), TT = static_cast<int64_t>(T);
      const torch::Tensor labels = torch::from_blob(batch.labels.data(), {B, TT}, torch::kFloat32).to(dev);
      const torch::Tensor mask = torch::from_blob(batch.mask.data(), {B, TT}, torch::kFloat32).to(dev);
      const torch::Tensor weights = torch::ones({TT}, torch::TensorOptions().device(dev));
      const InputLoss loss = [&](const embedding::ModelInput& x) { return MaskedBce(m.net->forward(x), labels, mask, weights); };
      input = Perturbed(input, AdversarialDelta(loss, input, *options.perturb));
    }
    torch::Tensor prob = torch::sigmoid(m.net->forward(input).to(torch::kFloat32)).contiguous().cpu();
    const float* pr = prob.data_ptr<float>();
    p.pred.insert(p.pred.end(), pr, pr + batch.size * T);
    p.labels.insert(p.labels.end(), batch.labels.begin(), batch.labels.end());
    p.mask.insert(p.mask.end(), batch.mask.begin(), batch.mask.end());
    p.user.insert(p.user.end(), batch.user.begin(), batch.user.end());
    p.scene.insert(p.scene.end(), batch.scene.begin(), batch.scene.end());
    for (size_t i = 0; i < batch.size; ++i) p.item.push_back(ds.events.item[batch.event[i]]);
    if (options.with_truth) p.truth.insert(p.truth.end(), batch.truth.begin(), batch.truth.end());
  }
  return p;
}

}  // namespace adrec::train
