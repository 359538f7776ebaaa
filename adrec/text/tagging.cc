#include "adrec/text/tagging.h"

#include <torch/torch.h>

#include <algorithm>
#include <random>

namespace adrec::text {
namespace {

const data::Column* CategoryColumn(const data::Dataset& ds, int level) {
  const std::string_view names[] = {data::cols::kCategory1, data::cols::kCategory2, data::cols::kCategory3};
  const data::Column* c = ds.item_table.Find(names[level]);
  return c && c->type == data::ColumnType::kUInt32 ? c : nullptr;
}

// Rows of `emb` L2-normalised (the fallback and MiniLM are already; a model without Normalize is not).
torch::Tensor Normalized(torch::Tensor emb) { return emb / emb.norm(2, 1, true).clamp_min(1e-12); }

}  // namespace

std::vector<std::string> TaggingTexts(const data::Dataset& ds) {
  const data::Column* title = ds.item_table.Find(data::cols::kTitle);
  const data::Column* desc = ds.item_table.Find(data::cols::kDescription);
  std::vector<std::string> out(ds.num_items());
  for (uint32_t i = 0; i < ds.num_items(); ++i) {
    if (title && title->type == data::ColumnType::kString) out[i] = title->str[i];
    if (desc && desc->type == data::ColumnType::kString && !desc->str[i].empty()) out[i] += ". " + desc->str[i];
  }
  return out;
}

StatusOr<TagResult> TagTaxonomy(const data::Dataset& ds, const TextEncoder& encoder, const TagOptions& options) {
  if (ds.taxonomy.nodes.size() < 2) return FailedPreconditionError("the dataset has no taxonomy to tag with");
  std::array<const data::Column*, 3> truth{};
  for (int l = 0; l < 3; ++l) {
    truth[l] = CategoryColumn(ds, l);
    if (!truth[l]) return FailedPreconditionError("the dataset's items have no cat" + std::to_string(l + 1) + " column (the ground truth)");
  }
  if (options.mode != "zero-shot" && options.mode != "few-shot") {
    return InvalidArgumentError("mode must be zero-shot or few-shot, not " + options.mode);
  }
  const size_t n_items = ds.num_items(), n_nodes = ds.taxonomy.nodes.size();
  // Label descriptions: the node's path in both languages ("games › MOBA / 游戏 › MOBA").
  std::vector<std::string> labels(n_nodes);
  for (uint32_t v = 1; v < n_nodes; ++v) {
    const auto& node = ds.taxonomy.nodes[v];
    labels[v] = ds.taxonomy.Path(v);
    if (!node.name_zh.empty()) labels[v] += " / " + node.name_zh;
  }
  ADREC_ASSIGN_OR_RETURN(std::vector<float> label_raw, encoder.Embed(labels));
  ADREC_ASSIGN_OR_RETURN(std::vector<float> item_raw, encoder.Embed(TaggingTexts(ds)));
  const int64_t dim = encoder.dim();
  torch::Tensor label_emb = Normalized(torch::from_blob(label_raw.data(), {int64_t(n_nodes), dim}, torch::kFloat32).clone());
  torch::Tensor item_emb = Normalized(torch::from_blob(item_raw.data(), {int64_t(n_items), dim}, torch::kFloat32).clone());

  TagResult r;
  r.predicted.assign(n_items, {0, 0, 0});
  r.evaluated.assign(n_items, 1);
  torch::Tensor prototypes = label_emb;
  if (options.mode == "few-shot") {
    // k labelled ads per leaf-level node (each ad labels its whole path); prototypes are the mean
    // of the label text and the labelled ads, so a node with no labelled ad falls back to its text.
    std::mt19937_64 rng(options.seed);
    std::vector<std::vector<uint32_t>> by_leaf(n_nodes);
    for (uint32_t i = 0; i < n_items; ++i) by_leaf[truth[2]->u32[i]].push_back(i);
    torch::Tensor sums = label_emb.clone();
    std::vector<double> counts(n_nodes, 1.0);
    for (uint32_t leaf = 1; leaf < n_nodes; ++leaf) {
      auto& items = by_leaf[leaf];
      std::shuffle(items.begin(), items.end(), rng);
      for (size_t k = 0; k < items.size() && k < static_cast<size_t>(options.shots); ++k) {
        const uint32_t i = items[k];
        r.evaluated[i] = 0;
        ++r.labelled;
        for (int l = 0; l < 3; ++l) {
          const uint32_t v = truth[l]->u32[i];
          if (v == 0) continue;
          sums[v] += item_emb[i];
          counts[v] += 1;
        }
      }
    }
    prototypes = Normalized(sums / torch::tensor(counts, torch::kFloat64).to(torch::kFloat32).unsqueeze(1));
  }
  torch::Tensor scores = torch::matmul(item_emb, prototypes.t());  // [items, nodes]
  auto score = scores.accessor<float, 2>();
  std::vector<std::vector<uint32_t>> children(n_nodes);
  for (uint32_t v = 1; v < n_nodes; ++v) children[ds.taxonomy.nodes[v].parent].push_back(v);
  for (uint32_t i = 0; i < n_items; ++i) {
    uint32_t parent = 0;
    bool path_right = true;
    for (int l = 0; l < 3; ++l) {
      uint32_t best = 0;
      float best_score = -2.f;
      for (uint32_t v : children[parent]) {
        if (score[i][v] > best_score) best_score = score[i][v], best = v;
      }
      r.predicted[i][l] = best;
      const uint32_t want = truth[l]->u32[i];
      if (!r.evaluated[i] || want == 0) break;
      TagLevel& lv = r.levels[l];
      ++lv.evaluated;
      // Conditional: the node chosen among the true parent's children.
      uint32_t best_given = 0;
      float best_given_score = -2.f;
      for (uint32_t v : children[l == 0 ? 0 : truth[l - 1]->u32[i]]) {
        if (score[i][v] > best_given_score) best_given_score = score[i][v], best_given = v;
      }
      lv.correct_given_parent += best_given == want;
      path_right = path_right && best == want;
      lv.correct += path_right;
      if (best == 0) break;
      parent = best;
    }
  }
  return r;
}

}  // namespace adrec::text
