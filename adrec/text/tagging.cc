#include "adrec/text/tagging.h"

#include <torch/torch.h>

#include <algorithm>
#include <random>
#include <span>

namespace adrec::text {
namespace {

const data::Column* CategoryColumn(const data::Dataset& ds, int level) {
  const std::string_view names[] = {data::cols::kCategory1, data::cols::kCategory2, data::cols::kCategory3};
  const data::Column* c = ds.item_table.Find(names[level]);
  return c && c->type == data::ColumnType::kUInt32 ? c : nullptr;
}

// Rows of `emb` L2-normalised (the fallback and MiniLM are already; a model without Normalize is not).
torch::Tensor Normalized(torch::Tensor emb) { return emb / emb.norm(2, 1, true).clamp_min(1e-12); }

// A softmax head trained on labelled rows x [n, d] with classes y [n] (< classes), scored on
// every row of `all`: a class is often a few words of the text (a hook phrase, a product
// word), which a class mean washes out and a linear head can pick out.
torch::Tensor SoftmaxHeadScores(const torch::Tensor& x, const torch::Tensor& y, int64_t classes, const torch::Tensor& all,
                                uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor w = torch::zeros({x.size(1), classes}, torch::requires_grad());
  torch::Tensor bias = torch::zeros({classes}, torch::requires_grad());
  torch::optim::Adam opt({w, bias}, torch::optim::AdamOptions(0.05).weight_decay(1e-4));
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    // Scaled like cosine logits at temperature 0.05 (the rows are unit vectors).
    torch::nn::functional::cross_entropy(torch::addmm(bias, x, w) * 20.0, y).backward();
    opt.step();
  }
  torch::NoGradGuard no_grad;
  return torch::addmm(bias, all, w);
}

// Up to `shots` items per label value 1..n_labels-1 (labels[i] = 0: unlabelled), shuffled
// with `seed`: the few-shot support set. Returned per value, in value order.
std::vector<std::vector<uint32_t>> PickSupport(std::span<const uint32_t> labels, size_t n_labels, int shots, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<uint32_t>> by_label(n_labels);
  for (uint32_t i = 0; i < labels.size(); ++i) by_label[labels[i]].push_back(i);
  by_label[0].clear();
  for (auto& items : by_label) {
    std::shuffle(items.begin(), items.end(), rng);
    if (items.size() > static_cast<size_t>(shots)) items.resize(static_cast<size_t>(shots));
  }
  return by_label;
}

StatusOr<torch::Tensor> EmbedRows(const TextEncoder& encoder, const std::vector<std::string>& texts) {
  ADREC_ASSIGN_OR_RETURN(std::vector<float> raw, encoder.Embed(texts));
  return Normalized(torch::from_blob(raw.data(), {int64_t(texts.size()), encoder.dim()}, torch::kFloat32).clone());
}

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
  ADREC_ASSIGN_OR_RETURN(torch::Tensor label_emb, EmbedRows(encoder, labels));
  ADREC_ASSIGN_OR_RETURN(torch::Tensor item_emb, EmbedRows(encoder, TaggingTexts(ds)));

  TagResult r;
  r.predicted.assign(n_items, {0, 0, 0});
  r.evaluated.assign(n_items, 1);
  torch::Tensor scores = torch::matmul(item_emb, label_emb.t());  // [items, nodes]
  if (options.mode == "few-shot") {
    // k labelled ads per leaf-level node (each ad labels its whole path), then one softmax head
    // per level over that level's nodes; its logits replace the label similarities there.
    std::vector<uint32_t> support;
    for (const auto& items : PickSupport(truth[2]->u32, n_nodes, options.shots, options.seed)) {
      for (uint32_t i : items) {
        r.evaluated[i] = 0;
        support.push_back(i);
      }
    }
    r.labelled = support.size();
    for (int l = 0; l < 3; ++l) {
      std::vector<int64_t> nodes, class_of(n_nodes, -1), rows, ys;
      for (uint32_t v = 1; v < n_nodes; ++v) {
        if (ds.taxonomy.nodes[v].level != l + 1) continue;
        class_of[v] = static_cast<int64_t>(nodes.size());
        nodes.push_back(v);
      }
      for (uint32_t i : support) {
        const uint32_t v = truth[l]->u32[i];
        if (v == 0 || class_of[v] < 0) continue;
        rows.push_back(i);
        ys.push_back(class_of[v]);
      }
      if (rows.empty() || nodes.empty()) continue;  // the label similarities stay
      torch::Tensor head = SoftmaxHeadScores(item_emb.index_select(0, torch::tensor(rows, torch::kLong)),
                                             torch::tensor(ys, torch::kLong), static_cast<int64_t>(nodes.size()),
                                             item_emb, options.seed + l);
      scores.index_copy_(1, torch::tensor(nodes, torch::kLong), head);
    }
  }
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

StatusOr<std::vector<AttributeResult>> TagAttributes(const data::Dataset& ds, const TextEncoder& encoder,
                                                     const std::vector<std::string>& columns, const TagOptions& options) {
  if (options.mode != "zero-shot" && options.mode != "few-shot") {
    return InvalidArgumentError("mode must be zero-shot or few-shot, not " + options.mode);
  }
  std::vector<AttributeResult> out;
  if (columns.empty()) return out;
  const size_t n_items = ds.num_items();
  ADREC_ASSIGN_OR_RETURN(torch::Tensor item_emb, EmbedRows(encoder, TaggingTexts(ds)));
  for (const std::string& name : columns) {
    const data::Column* col = ds.item_table.Find(name);
    if (!col || col->type != data::ColumnType::kCategorical || !col->vocab || col->vocab->size() < 2) {
      return InvalidArgumentError("--attributes: '" + name + "' is not a categorical item column of the dataset");
    }
    AttributeResult r;
    r.column = name;
    const uint32_t n_classes = col->vocab->size() - 1;  // code 0 is "missing"
    for (uint32_t c = 1; c <= n_classes; ++c) r.classes.push_back(col->vocab->Name(c));
    r.evaluated.assign(n_items, 0);
    for (uint32_t i = 0; i < n_items; ++i) r.evaluated[i] = col->u32[i] != 0;
    torch::Tensor scores;
    if (options.mode == "few-shot") {
      // A softmax head on `shots` labelled ads per class.
      const auto support = PickSupport(col->u32, n_classes + 1, options.shots, options.seed);
      std::vector<int64_t> rows, ys;
      for (uint32_t c = 1; c <= n_classes; ++c) {
        for (uint32_t i : support[c]) {
          rows.push_back(i);
          ys.push_back(c - 1);
          r.evaluated[i] = 0;
          ++r.labelled;
        }
      }
      scores = SoftmaxHeadScores(item_emb.index_select(0, torch::tensor(rows, torch::kLong)), torch::tensor(ys, torch::kLong),
                                 int64_t(n_classes), item_emb, options.seed);
    } else {
      std::vector<std::string> labels = r.classes;
      for (std::string& label : labels) std::replace(label.begin(), label.end(), '_', ' ');
      ADREC_ASSIGN_OR_RETURN(torch::Tensor label_emb, EmbedRows(encoder, labels));
      scores = torch::matmul(item_emb, label_emb.t());
    }
    torch::Tensor best = scores.argmax(1).contiguous();
    const int64_t* b = best.data_ptr<int64_t>();
    std::vector<size_t> freq(n_classes + 1, 0);
    for (uint32_t i = 0; i < n_items; ++i) freq[col->u32[i]] += col->u32[i] != 0;
    const uint32_t majority = static_cast<uint32_t>(std::max_element(freq.begin(), freq.end()) - freq.begin());
    r.predicted.resize(n_items);
    for (uint32_t i = 0; i < n_items; ++i) {
      r.predicted[i] = static_cast<uint32_t>(b[i]) + 1;
      if (!r.evaluated[i]) continue;
      ++r.evaluated_count;
      r.correct += r.predicted[i] == col->u32[i];
      r.majority_correct += majority == col->u32[i];
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace adrec::text
