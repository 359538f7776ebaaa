#include <torch/torch.h>

#include "adrec/creative/context.h"
#include "adrec/train/ranking_model.h"

namespace adrec::creative {

StatusOr<std::pair<std::vector<float>, uint32_t>> BundleUserVectors(const std::filesystem::path& bundle,
                                                                    const data::Dataset& catalogue) {
  ADREC_ASSIGN_OR_RETURN(train::LoadedBundle b, train::LoadBundle(bundle, torch::kCPU));
  ADREC_RETURN_IF_ERROR(train::CheckBundleData(b.manifest, bundle, catalogue));
  std::string table;
  for (const data::FieldSpec& f : b.model.spec.fields) {
    if (f.source == "user") table = f.table.empty() ? f.name : f.table;
  }
  if (table.empty()) return InvalidArgumentError(bundle.string() + ": the ranker has no user ID field (source \"user\")");
  for (size_t i = 0; i < b.model.embeddings->num_tables(); ++i) {
    embedding::EmbeddingTable& t = b.model.embeddings->table(i);
    if (t.spec().name != table) continue;
    const uint32_t n = catalogue.users.size();
    std::vector<int64_t> ids(n), rows(n);
    for (uint32_t u = 0; u < n; ++u) ids[u] = u;
    t.MapIds(ids, rows, /*train=*/false, /*step=*/0);
    torch::NoGradGuard no_grad;
    const torch::Tensor w = t.weight().index_select(0, torch::tensor(rows, torch::kLong)).to(torch::kFloat32);
    const torch::Tensor unit = (w / w.norm(2, 1, true).clamp_min(1e-12)).contiguous();
    std::vector<float> out(unit.data_ptr<float>(), unit.data_ptr<float>() + unit.numel());
    return std::make_pair(std::move(out), static_cast<uint32_t>(w.size(1)));
  }
  return InvalidArgumentError(bundle.string() + ": no embedding table '" + table + "'");
}

}  // namespace adrec::creative
