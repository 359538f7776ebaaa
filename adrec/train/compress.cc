// adrec compress: row-wise quantised embedding tables and magnitude-pruned dense weights.
#include <torch/torch.h>

#include <chrono>

#include "adrec/core/file.h"
#include "adrec/models/bundle.h"
#include "adrec/train/ranking_model.h"
#include "adrec/train/trainer.h"

namespace adrec::train {

using nlohmann::ordered_json;

namespace {

uint64_t EmbeddingBytes(const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  uint64_t bytes = 0;
  for (const auto& [name, t] : tensors) {
    if (name.rfind("emb/", 0) == 0) bytes += t.nbytes();
  }
  return bytes;
}

// The test AUC, log loss and evaluation seconds of a bundle.
StatusOr<ordered_json> TestFigures(const CompressOptions& o, const std::filesystem::path& bundle) {
  EvalOptions e;
  e.data = o.data;
  e.bundle = bundle;
  e.threads = o.threads;
  e.cold_threshold = 0;
  const auto start = std::chrono::steady_clock::now();
  ADREC_ASSIGN_OR_RETURN(ordered_json r, EvaluateRanking(e));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return ordered_json{{"auc", r["auc"]}, {"logloss", r["logloss"]}, {"samples", r["samples"]}, {"eval_seconds", seconds}};
}

}  // namespace

StatusOr<ordered_json> CompressRanking(const CompressOptions& o) {
  try {
    if (o.bits != 32 && o.bits != 8 && o.bits != 4) return InvalidArgumentError("--bits must be 8, 4 or 32, got " + std::to_string(o.bits));
    if (!(o.prune >= 0 && o.prune < 1)) return InvalidArgumentError("--prune must be in [0, 1), got " + std::to_string(o.prune));
    if (o.bits == 32 && o.prune == 0) return InvalidArgumentError("nothing to do: give --bits 8 or 4, or --prune");
    if (std::filesystem::exists(o.out / models::kBundleManifestFile) && !o.overwrite) {
      return AlreadyExistsError(o.out.string() + " holds a bundle; pass --overwrite to replace it");
    }
    if (o.threads > 0) at::set_num_threads(o.threads);
    ADREC_ASSIGN_OR_RETURN(LoadedBundle b, LoadBundle(o.bundle, torch::kCPU));
    if (const data::TableSpec* q = QuantizedTable(b.model.spec)) {
      return InvalidArgumentError(o.bundle.string() + " is compressed already (table '" + q->name + "')");
    }
    const std::vector<std::pair<std::string, torch::Tensor>> before = ModelTensors(b.model, /*with_optimizer=*/false);
    ordered_json manifest = ordered_json::parse(b.manifest.dump());
    std::vector<std::string> quantised, kept_float;
    std::vector<std::pair<std::string, torch::Tensor>> after;
    int64_t zeroed = 0, prunable = 0;
    torch::NoGradGuard no_grad;
    for (const auto& [name, t] : before) {
      if (name.rfind("dense/", 0) == 0) {
        torch::Tensor w = t;
        // Matrices only (Linear and cross weights): biases and norms' vectors are few and sensitive.
        if (o.prune > 0 && t.dim() >= 2 && t.is_floating_point()) {
          const torch::Tensor mag = t.abs().flatten();
          const int64_t k = static_cast<int64_t>(o.prune * static_cast<double>(mag.numel()));
          if (k > 0) {
            const double cut = std::get<0>(mag.kthvalue(k)).item<double>();
            w = torch::where(t.abs() <= cut, torch::zeros_like(t), t);
            zeroed += (w == 0).sum().item<int64_t>();
          }
          prunable += t.numel();
        }
        after.emplace_back(name, w);
        continue;
      }
      after.emplace_back(name, t);
    }
    if (o.bits < 32) {
      auto& tables = manifest["feature_spec"]["tables"];
      for (size_t i = 0; i < b.model.spec.tables.size(); ++i) {
        const data::TableSpec& spec = b.model.spec.tables[i];
        if (spec.kind == data::TableKind::kDynamic) {
          kept_float.push_back(spec.name);
          continue;
        }
        const std::string key = "emb/" + spec.name + ".weight";
        auto it = std::find_if(after.begin(), after.end(), [&](const auto& p) { return p.first == key; });
        if (it == after.end()) return InternalError(o.bundle.string() + ": no tensor " + key);
        const embedding::QuantizedRows q = embedding::QuantizeRows(it->second, o.bits);
        it = after.erase(it);
        after.insert(it, {{"emb/" + spec.name + ".qcodes", q.codes}, {"emb/" + spec.name + ".qparams", q.params}});
        tables[i]["storage_bits"] = o.bits;
        quantised.push_back(spec.name);
      }
    }
    ordered_json report;
    report["bundle"] = o.bundle.string();
    report["out"] = o.out.string();
    report["bits"] = o.bits;
    report["quantised_tables"] = quantised;
    if (!kept_float.empty()) report["float_tables"] = kept_float;  // dynamic: their rows move
    const uint64_t eb = EmbeddingBytes(before), ea = EmbeddingBytes(after);
    report["embedding_bytes"] = {{"before", eb}, {"after", ea}, {"ratio", ea > 0 ? static_cast<double>(eb) / ea : 0.0}};
    report["prune"] = o.prune;
    if (o.prune > 0) report["dense_zeroed"] = {{"weights", zeroed}, {"of", prunable}};
    manifest["compression"] = {{"from", std::filesystem::absolute(o.bundle).string()}, {"embedding_bits", o.bits},
                               {"prune", o.prune}, {"embedding_bytes", report["embedding_bytes"]}};
    manifest.erase("metrics");  // the source's figures: the compressed model's are its own
    ADREC_RETURN_IF_ERROR(models::WriteBundle(o.out, after, manifest));
    if (!o.data.empty()) {
      ADREC_ASSIGN_OR_RETURN(ordered_json fb, TestFigures(o, o.bundle));
      ADREC_ASSIGN_OR_RETURN(ordered_json fa, TestFigures(o, o.out));
      report["test"] = {{"before", fb}, {"after", fa},
                        {"auc_change", fa["auc"].get<double>() - fb["auc"].get<double>()},
                        {"logloss_change", fa["logloss"].get<double>() - fb["logloss"].get<double>()}};
    }
    return report;
  } catch (const c10::Error& e) {
    return InternalError(std::string("libtorch: ") + e.what_without_backtrace());
  }
}

}  // namespace adrec::train
