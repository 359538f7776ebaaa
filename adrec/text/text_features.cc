#include "adrec/text/text_features.h"

#include <torch/torch.h>

#include <algorithm>

#include "adrec/core/config.h"
#include "adrec/core/file.h"
#include "adrec/data/dataset_io.h"
#include "adrec/text/pca.h"

namespace adrec::text {
namespace {

std::string_view PastTense(data::Action a) {
  switch (a) {
    case data::Action::kImpression: return "saw";
    case data::Action::kClick: return "clicked";
    case data::Action::kDownload: return "downloaded";
    case data::Action::kInstall: return "installed";
    case data::Action::kConversion: return "converted on";
    case data::Action::kRating: return "rated";
    case data::Action::kPurchase: return "bought";
    case data::Action::kView: return "viewed";
    case data::Action::kLike: return "liked";
    case data::Action::kAddToCart: return "added to cart";
    case data::Action::kShare: return "shared";
  }
  return "used";
}

const std::vector<std::string>& Placeholders() {
  static const std::vector<std::string> names = {"action", "title", "category", "cat1", "cat2", "cat3"};
  return names;
}

// The item's taxonomy path to `levels` levels ("games › MOBA"), or "" without a taxonomy.
std::string CategoryPath(const data::Dataset& ds, uint32_t item, int levels) {
  if (ds.taxonomy.nodes.empty()) return "";
  const std::string_view names[] = {data::cols::kCategory3, data::cols::kCategory2, data::cols::kCategory1};
  for (std::string_view name : names) {
    const data::Column* c = ds.item_table.Find(name);
    if (!c || c->type != data::ColumnType::kUInt32 || item >= c->u32.size() || c->u32[item] == 0) continue;
    uint32_t node = c->u32[item];
    while (node != 0 && ds.taxonomy.nodes[node].level > levels) node = ds.taxonomy.nodes[node].parent;
    return node == 0 ? "" : ds.taxonomy.Path(node);
  }
  return "";
}

std::string StringOf(const data::Dataset& ds, std::string_view column, uint32_t item) {
  const data::Column* c = ds.item_table.Find(column);
  if (!c || item >= c->rows()) return "";
  if (c->type == data::ColumnType::kString) return c->str[item];
  if (c->type == data::ColumnType::kCategorical && c->vocab) return std::string(c->vocab->Name(c->u32[item]));
  return "";
}

std::string Tags(const data::Dataset& ds, uint32_t item) {
  const data::Column* c = ds.item_table.Find(data::cols::kTags);
  if (!c || c->type != data::ColumnType::kCategoricalList || !c->vocab || item >= c->rows()) return "";
  std::string out;
  for (uint32_t code : c->ListAt(item)) {
    if (!out.empty()) out += ", ";
    out += c->vocab->Name(code);
  }
  return out;
}

std::string Fill(const std::string& pattern, const std::vector<std::pair<std::string, std::string>>& values) {
  std::string out = pattern;
  for (const auto& [key, value] : values) {
    const std::string token = "{" + key + "}";
    for (size_t pos = 0; (pos = out.find(token, pos)) != std::string::npos; pos += value.size()) out.replace(pos, token.size(), value);
  }
  return out;
}

}  // namespace

StatusOr<PromptTemplate> ReadPromptTemplate(const std::filesystem::path& path) {
  ADREC_ASSIGN_OR_RETURN(Config cfg, Config::LoadFile(path));
  PromptTemplate t;
  ADREC_RETURN_IF_ERROR(cfg.Get("prompt.header", &t.header));
  int64_t max_events = static_cast<int64_t>(t.max_events);
  ADREC_RETURN_IF_ERROR(cfg.Get("prompt.max_events", &max_events));
  if (max_events < 1) return InvalidArgumentError(path.string() + ": prompt.max_events must be at least 1");
  t.max_events = static_cast<size_t>(max_events);
  if (cfg.Has("prompt.actions")) {
    std::vector<std::string> names;
    ADREC_RETURN_IF_ERROR(cfg.Get("prompt.actions", &names));
    t.actions.clear();
    for (const std::string& n : names) {
      auto a = data::ParseAction(n);
      if (!a.ok()) return InvalidArgumentError(path.string() + ": prompt.actions: " + a.status().message());
      t.actions.push_back(*a);
    }
  }
  ADREC_RETURN_IF_ERROR(cfg.Get("prompt.event", &t.event));
  ADREC_RETURN_IF_ERROR(cfg.Get("prompt.separator", &t.separator));
  ADREC_RETURN_IF_ERROR(cfg.CheckNoUnknownKeys());
  for (size_t open = t.event.find('{'); open != std::string::npos; open = t.event.find('{', open + 1)) {
    const size_t close = t.event.find('}', open);
    const std::string name = t.event.substr(open + 1, close == std::string::npos ? std::string::npos : close - open - 1);
    if (close == std::string::npos || std::find(Placeholders().begin(), Placeholders().end(), name) == Placeholders().end()) {
      return InvalidArgumentError(path.string() + ": prompt.event has unknown placeholder {" + name +
                                  "} (known: {action} {title} {category} {cat1} {cat2} {cat3})");
    }
  }
  return t;
}

std::vector<std::string> ItemTexts(const data::Dataset& ds) {
  std::vector<std::string> out(ds.num_items());
  for (uint32_t i = 0; i < ds.num_items(); ++i) {
    std::string text = StringOf(ds, data::cols::kTitle, i);
    if (text.empty()) text = std::string(ds.items.Name(i));
    if (std::string d = StringOf(ds, data::cols::kDescription, i); !d.empty()) text += ". " + d;
    if (std::string c = CategoryPath(ds, i, 3); !c.empty()) text += ". Category: " + c;
    if (std::string tags = Tags(ds, i); !tags.empty()) text += ". Tags: " + tags;
    out[i] = std::move(text);
  }
  return out;
}

std::vector<std::string> UserPrompts(const data::Dataset& ds, const data::Split* split, const PromptTemplate& prompt) {
  std::vector<std::string> out(ds.num_users());
  uint32_t wanted = 0;
  for (data::Action a : prompt.actions) wanted |= 1u << static_cast<uint8_t>(a);
  std::vector<uint64_t> picked;
  for (uint32_t u = 0; u < ds.num_users(); ++u) {
    auto [begin, end] = ds.UserRange(u);
    picked.clear();
    for (uint64_t e = end; e > begin && picked.size() < prompt.max_events; --e) {
      const uint64_t ev = e - 1;
      if (!((wanted >> ds.events.action[ev]) & 1u)) continue;
      if (split && split->PartOf(ev) != data::SplitPart::kTrain) continue;
      picked.push_back(ev);
    }
    if (picked.empty()) continue;
    std::string text = prompt.header;
    for (size_t k = 0; k < picked.size(); ++k) {  // most recent first
      const uint64_t ev = picked[k];
      const uint32_t item = ds.events.item[ev];
      std::string category = CategoryPath(ds, item, 2);
      if (category.empty()) category = Tags(ds, item);
      std::string title = StringOf(ds, data::cols::kTitle, item);
      if (title.empty()) title = std::string(ds.items.Name(item));
      text += (k == 0 ? " " : prompt.separator) +
              Fill(prompt.event, {{"action", std::string(PastTense(static_cast<data::Action>(ds.events.action[ev])))},
                                  {"title", title},
                                  {"category", category},
                                  {"cat1", CategoryPath(ds, item, 1)},
                                  {"cat2", CategoryPath(ds, item, 2)},
                                  {"cat3", CategoryPath(ds, item, 3)}});
    }
    out[u] = std::move(text);
  }
  return out;
}

StatusOr<TextColumnReport> AddTextColumn(data::Dataset* ds, const data::Split* split, const TextEncoder& encoder,
                                         const std::vector<std::string>& texts, const TextColumnOptions& options) {
  const bool items = options.what == "items";
  if (!items && options.what != "users") return InvalidArgumentError("what must be items or users, not " + options.what);
  data::Table& table = items ? ds->item_table : ds->user_table;
  const size_t rows = items ? ds->num_items() : ds->num_users();
  if (texts.size() != rows) {
    return InvalidArgumentError("expected " + std::to_string(rows) + " texts, got " + std::to_string(texts.size()));
  }
  if (split) ADREC_RETURN_IF_ERROR(data::CheckSplitMatches(*split, *ds));
  TextColumnReport r;
  r.column = options.column;
  r.encoder = encoder.name();
  r.rows = rows;
  r.encoder_dim = encoder.dim();
  ADREC_ASSIGN_OR_RETURN(std::vector<float> emb, encoder.Embed(texts, &r.stats));
  torch::Tensor x = torch::from_blob(emb.data(), {static_cast<int64_t>(rows), encoder.dim()}, torch::kFloat32);
  // Fit rows: non-empty texts, and for items only those seen in train (the PCA learns from what
  // the models train on; new items are projected like any other).
  std::vector<uint8_t> fit(rows, 0);
  for (size_t i = 0; i < rows; ++i) fit[i] = !texts[i].empty();
  if (items && split) {
    std::vector<uint8_t> seen(rows, 0);
    for (size_t e = 0; e < ds->num_events(); ++e) {
      if (split->PartOf(e) == data::SplitPart::kTrain) seen[ds->events.item[e]] = 1;
    }
    for (size_t i = 0; i < rows; ++i) fit[i] &= seen[i];
  }
  std::vector<int64_t> fit_rows;
  for (size_t i = 0; i < rows; ++i) {
    if (fit[i]) fit_rows.push_back(static_cast<int64_t>(i));
    r.empty_rows += texts[i].empty();
  }
  r.fit_rows = fit_rows.size();
  torch::Tensor out = x;
  if (options.dim > 0) {
    ADREC_ASSIGN_OR_RETURN(Pca pca, FitPca(x.index_select(0, torch::tensor(fit_rows, torch::kInt64)), options.dim));
    out = pca.Transform(x);
    r.explained_variance = pca.explained;
    ADREC_ASSIGN_OR_RETURN(r.pca_safetensors,
                           SerializePca(pca, {{"encoder", r.encoder}, {"what", options.what}, {"column", r.column}}));
  }
  out = out.contiguous();
  // Rows with no text stay empty (a zero vector to the models), not the projection of nothing.
  r.dim = out.size(1);
  data::Column col = data::MakeColumn(options.column, data::ColumnType::kSparseVector);
  std::vector<uint32_t> idx(static_cast<size_t>(r.dim));
  for (size_t d = 0; d < idx.size(); ++d) idx[d] = static_cast<uint32_t>(d);
  const float* values = out.data_ptr<float>();
  for (size_t i = 0; i < rows; ++i) {
    if (texts[i].empty()) {
      col.PushSparse({}, {});
    } else {
      col.PushSparse(idx, std::span<const float>(values + i * r.dim, static_cast<size_t>(r.dim)));
    }
  }
  if (data::Column* existing = table.Find(options.column)) {
    *existing = std::move(col);
  } else {
    table.columns.push_back(std::move(col));
  }
  return r;
}

std::string PcaFileName(const TextColumnOptions& options) {
  return options.what + "_" + options.column + ".pca.safetensors";
}

StatusOr<std::vector<std::pair<std::string, std::string>>> ReadTextSideFiles(const std::filesystem::path& dataset) {
  std::vector<std::pair<std::string, std::string>> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dataset / data::kDatasetTextDir, ec)) {
    ADREC_ASSIGN_OR_RETURN(std::string bytes, ReadFile(entry.path()));
    files.emplace_back(entry.path().filename().string(), std::move(bytes));
  }
  return files;
}

Status WriteTextSideFiles(const std::filesystem::path& dataset, const std::vector<std::pair<std::string, std::string>>& kept,
                          const TextColumnOptions& options, const TextColumnReport& report) {
  const std::filesystem::path dir = dataset / data::kDatasetTextDir;
  const std::string pca_name = PcaFileName(options);
  if (kept.empty() && report.pca_safetensors.empty()) return Status::Ok();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("cannot create " + dir.string() + ": " + ec.message());
  for (const auto& [name, bytes] : kept) {
    if (name != pca_name) ADREC_RETURN_IF_ERROR(AtomicWriteFile(dir / name, bytes));
  }
  if (!report.pca_safetensors.empty()) ADREC_RETURN_IF_ERROR(AtomicWriteFile(dir / pca_name, report.pca_safetensors));
  return Status::Ok();
}

}  // namespace adrec::text
