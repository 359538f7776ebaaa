// adrec explain: integrated gradients of a ranking bundle's score for samples of a split part,
// per input group (models/explain.h).
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "adrec/data/batch.h"
#include "adrec/data/dataset_io.h"
#include "adrec/models/explain.h"
#include "adrec/tensor/device.h"
#include "adrec/train/ranking_model.h"
#include "adrec/train/retrieval_towers.h"
#include "adrec/train/trainer.h"

namespace adrec::train {

using nlohmann::ordered_json;

StatusOr<ordered_json> ExplainRanking(const ExplainOptions& o) {
  try {
    if (o.steps < 1 || o.steps > 4096) return InvalidArgumentError("--steps must be in [1, 4096]");
    if (o.top < 1) return InvalidArgumentError("--top must be >= 1");
    ADREC_ASSIGN_OR_RETURN(torch::Device device, tensor::ParseDevice(o.device));
    if (o.threads > 0) at::set_num_threads(o.threads);
    ADREC_ASSIGN_OR_RETURN(LoadedBundle b, LoadBundle(o.bundle, device));
    ADREC_ASSIGN_OR_RETURN(data::Dataset ds, data::ReadDataset(o.data));
    RankingModel& m = b.model;
    ADREC_RETURN_IF_ERROR(CheckBundleData(b.manifest, o.bundle, ds));
    if (Status s = m.spec.Bind(ds); !s.ok()) {
      return Status(s.code(), "the dataset does not fit the bundle's features: " + s.message());
    }
    const std::string target_name = o.target.empty() ? b.manifest.value("primary_target", "") : o.target;
    const int target = std::max(0, m.spec.TargetIndex(target_name));
    if (!target_name.empty() && m.spec.TargetIndex(target_name) < 0) {
      std::string known;
      for (const auto& t : m.spec.targets) known += (known.empty() ? "" : ", ") + t.name;
      return InvalidArgumentError("--target '" + target_name + "' is not a target of the bundle (" + known + ")");
    }
    ADREC_ASSIGN_OR_RETURN(PartSamples ps, SamplesOfPart(b.manifest, o.split_dir, ds, m.spec, o.part));
    const data::SampleSet& samples = ps.samples;
    if (samples.size() == 0) return FailedPreconditionError("no samples in the '" + o.part + "' part");
    std::vector<uint64_t> chosen;
    if (o.events.empty()) {
      chosen = SeededSubset(samples.size(), std::max<size_t>(1, o.limit), o.seed);
    } else {
      for (uint64_t e : o.events) {
        auto it = std::find(samples.events.begin(), samples.events.end(), e);
        if (it == samples.events.end()) {
          return InvalidArgumentError("--events: event " + std::to_string(e) + " is not a sample of the '" + o.part +
                                      "' part (" + std::to_string(samples.size()) + " samples there)");
        }
        chosen.push_back(static_cast<uint64_t>(it - samples.events.begin()));
      }
    }
    data::Batch batch;
    data::BuildBatch(ds, m.spec, samples, chosen, &batch);
    m.net->eval();
    embedding::EmbeddingCollection::Lookup lookup;
    {
      torch::NoGradGuard no_grad;
      lookup = m.embeddings->Forward(batch, /*train=*/false, 0);
    }
    const models::InputGroups groups = InputGroupsOf(m);
    const models::Attributions a = models::IntegratedGradients(*m.net, lookup.input, groups, target, o.steps);
    const torch::Tensor values = a.values.cpu(), logit = a.logit.cpu(), base = a.baseline_logit.cpu();

    ordered_json out;
    out["bundle"] = o.bundle.string();
    out["model"] = b.manifest.value("model", "");
    out["target"] = m.spec.targets[static_cast<size_t>(target)].name;
    out["part"] = o.part;
    out["steps"] = o.steps;
    out["baseline"] = "zero input (embeddings of zeros, dense fields at their normalised mean)";
    out["groups"] = a.groups;
    ordered_json mean_abs = ordered_json::object();
    const torch::Tensor ma = values.abs().mean(0);
    for (size_t g = 0; g < a.groups.size(); ++g) mean_abs[a.groups[g]] = ma[static_cast<int64_t>(g)].item<double>();
    out["mean_abs"] = mean_abs;
    const size_t T = m.spec.targets.size();
    ordered_json list = ordered_json::array();
    for (size_t i = 0; i < chosen.size(); ++i) {
      const uint64_t e = samples.events[chosen[i]];
      const int64_t r = static_cast<int64_t>(i);
      ordered_json s;
      s["event"] = e;
      s["user"] = ds.users.Name(ds.events.user[e]);
      s["item"] = ds.items.Name(ds.events.item[e]);
      s["scene"] = ds.scenes[ds.events.scene[e]];
      const size_t li = chosen[i] * T + static_cast<size_t>(target);
      if (samples.mask[li] > 0) s["label"] = samples.labels[li];
      const double z = logit[r].item<double>();
      s["score"] = 1.0 / (1.0 + std::exp(-z));
      s["logit"] = z;
      s["baseline_logit"] = base[r].item<double>();
      ordered_json attr = ordered_json::object();
      for (size_t g = 0; g < a.groups.size(); ++g) attr[a.groups[g]] = values[r][static_cast<int64_t>(g)].item<double>();
      s["attributions"] = attr;
      ordered_json top = ordered_json::array();
      for (int g : models::TopGroups(values[r], o.top)) {
        top.push_back({{"group", a.groups[static_cast<size_t>(g)]}, {"attribution", values[r][g].item<double>()}});
      }
      s["top"] = top;
      s["gap"] = values[r].sum().item<double>() - (z - base[r].item<double>());
      list.push_back(s);
    }
    out["samples"] = list;
    return out;
  } catch (const c10::Error& e) {
    return InternalError(std::string("libtorch: ") + e.what_without_backtrace());
  }
}

}  // namespace adrec::train
