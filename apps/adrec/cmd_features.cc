// adrec features: writes the arrays a ranking model is trained on — exactly what BuildBatch makes
// from the config's [features] over the config's [data] split, normalisation fitted on train —
// as .npy files, so a user (or a PyTorch twin in bench/reference/) sees what the model sees.
#include <algorithm>
#include <bit>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "adrec/core/config.h"
#include "adrec/core/file.h"
#include "adrec/data/dataset_io.h"
#include "adrec/data/features.h"
#include "adrec/data/ranking_data.h"
#include "adrec/data/split.h"
#include "adrec/train/train_config.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {
namespace {

static_assert(std::endian::native == std::endian::little, ".npy files are written as little-endian raw data");

// Samples per BuildBatch call: bounds memory on large datasets; the files are the same for any value.
constexpr size_t kChunk = 65536;
// Every header is padded to this many bytes (a multiple of 64, as numpy writes them), so it can
// be rewritten in place once the row count of a streamed file is known.
constexpr size_t kNpyHeaderBytes = 128;

// An .npy file (format version 1.0: magic, version, header length, a Python dict literal padded
// with spaces to the alignment and ended by '\n', then the raw C-order data) written in chunks.
class NpyWriter {
 public:
  NpyWriter(std::filesystem::path path, std::string descr, int64_t width)
      : path_(std::move(path)), descr_(std::move(descr)), width_(width) {}

  Status Open() {
    out_.open(path_, std::ios::binary | std::ios::trunc);
    if (!out_) return IoError("cannot create " + path_.string());
    out_ << std::string(kNpyHeaderBytes, ' ');  // the header is written by Close
    return Status::Ok();
  }
  template <typename T>
  void Append(const T* data, size_t count) {
    out_.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * sizeof(T)));
    values_ += count;
  }
  Status Close() {
    const uint64_t rows = width_ < 0 ? values_ : rows_;
    if (width_ >= 0 && values_ != rows_ * static_cast<uint64_t>(width_)) {
      return InternalError(path_.string() + ": " + std::to_string(values_) + " values for " + std::to_string(rows_) +
                           " rows of " + std::to_string(width_));
    }
    std::string shape = "(" + std::to_string(rows) + (width_ < 0 ? "," : ", " + std::to_string(width_)) + ")";
    std::string dict = "{'descr': '" + descr_ + "', 'fortran_order': False, 'shape': " + shape + ", }";
    const size_t preamble = 10;  // magic (6) + version (2) + header length (2)
    if (preamble + dict.size() + 1 > kNpyHeaderBytes) return InternalError(path_.string() + ": .npy header too long");
    dict.append(kNpyHeaderBytes - preamble - dict.size() - 1, ' ');
    dict.push_back('\n');
    const uint16_t len = static_cast<uint16_t>(dict.size());
    std::string header = "\x93NUMPY";
    header.push_back('\x01');
    header.push_back('\x00');
    header.push_back(static_cast<char>(len & 0xff));
    header.push_back(static_cast<char>(len >> 8));
    header += dict;
    out_.seekp(0);
    out_.write(header.data(), static_cast<std::streamsize>(header.size()));
    out_.close();
    if (!out_) return IoError("cannot write " + path_.string());
    return Status::Ok();
  }
  // Rows of a two-dimensional array ([n, 0] arrays have no values to count them by).
  void set_rows(uint64_t rows) { rows_ = rows; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::string descr_;
  int64_t width_;  // -1: one-dimensional
  uint64_t values_ = 0, rows_ = 0;
  std::ofstream out_;
};

struct Flags {
  std::string data, config, out, split_dir;
  std::vector<std::string> parts = {"train", "valid", "test"};
};

StatusOr<data::SplitPart> ParsePart(const std::string& name) {
  if (name == "train") return data::SplitPart::kTrain;
  if (name == "valid") return data::SplitPart::kValid;
  if (name == "test") return data::SplitPart::kTest;
  return InvalidArgumentError("--parts: '" + name + "' is not one of train, valid, test");
}

// Writes one part's arrays; returns the file names written.
StatusOr<std::vector<std::string>> WritePart(const data::Dataset& ds, const data::FeatureSpec& spec,
                                             const data::SampleSet& samples, const std::string& part,
                                             const std::filesystem::path& dir) {
  const auto sparse = spec.SparseFields();
  const auto text = spec.TextFields();
  const int64_t T = static_cast<int64_t>(spec.targets.size());
  const uint64_t n = samples.size();
  std::vector<std::unique_ptr<NpyWriter>> files;
  auto add = [&](const std::string& name, const std::string& descr, int64_t width) {
    files.push_back(std::make_unique<NpyWriter>(dir / (part + "." + name + ".npy"), descr, width));
    files.back()->set_rows(n);
    return files.back().get();
  };
  std::vector<NpyWriter*> ids, offsets, texts;
  for (const data::FieldSpec* f : sparse) {
    ids.push_back(add(f->name + ".ids", "<i8", -1));
    offsets.push_back(add(f->name + ".offsets", "<i8", -1));
  }
  NpyWriter* dense = add("dense", "<f4", spec.DenseWidth());
  for (const data::FieldSpec* f : text) texts.push_back(add(f->name + ".text", "<f4", f->width));
  NpyWriter* labels = add("labels", "<f4", T);
  NpyWriter* mask = add("mask", "<f4", T);
  NpyWriter* user = add("user", "<u4", -1);
  NpyWriter* scene = add("scene", "|u1", -1);
  NpyWriter* event = add("event", "<u8", -1);
  NpyWriter* truth = ds.has_truth() ? add("truth", "<f4", -1) : nullptr;
  for (auto& f : files) ADREC_RETURN_IF_ERROR(f->Open());

  std::vector<int64_t> base(sparse.size(), 0);
  for (size_t k = 0; k < sparse.size(); ++k) offsets[k]->Append(&base[k], 1);  // the leading 0
  std::vector<uint64_t> order;
  data::Batch batch;
  for (uint64_t begin = 0; begin < n; begin += kChunk) {
    const uint64_t end = std::min<uint64_t>(n, begin + kChunk);
    order.resize(end - begin);
    std::iota(order.begin(), order.end(), begin);
    data::BuildBatch(ds, spec, samples, order, &batch);
    for (size_t k = 0; k < sparse.size(); ++k) {
      const data::SparseFieldBatch& s = batch.sparse[k];
      ids[k]->Append(s.ids.data(), s.ids.size());
      std::vector<int64_t> shifted(s.offsets.begin() + 1, s.offsets.end());
      for (int64_t& o : shifted) o += base[k];
      offsets[k]->Append(shifted.data(), shifted.size());
      base[k] += static_cast<int64_t>(s.ids.size());
    }
    dense->Append(batch.dense.data(), batch.dense.size());
    for (size_t t = 0; t < text.size(); ++t) texts[t]->Append(batch.text[t].data(), batch.text[t].size());
    labels->Append(batch.labels.data(), batch.labels.size());
    mask->Append(batch.mask.data(), batch.mask.size());
    user->Append(batch.user.data(), batch.user.size());
    scene->Append(batch.scene.data(), batch.scene.size());
    event->Append(batch.event.data(), batch.event.size());
    if (truth) truth->Append(batch.truth.data(), batch.truth.size());
  }
  std::vector<std::string> names;
  for (auto& f : files) {
    ADREC_RETURN_IF_ERROR(f->Close());
    names.push_back(f->path().filename().string());
  }
  return names;
}

Status Run(const Flags& flags, const Context& ctx) {
  std::vector<data::SplitPart> parts;
  for (const auto& p : flags.parts) {
    ADREC_ASSIGN_OR_RETURN(data::SplitPart part, ParsePart(p));
    parts.push_back(part);
  }
  ADREC_ASSIGN_OR_RETURN(Config cfg, Config::LoadFile(flags.config));
  // The same readers as `adrec train`, so the arrays are the ones its batches hold.
  data::SplitOptions split_options;
  ADREC_RETURN_IF_ERROR(train::ReadSplitOptions(cfg, &split_options));
  ADREC_ASSIGN_OR_RETURN(data::FeatureSpec config_spec, data::FeatureSpec::FromConfig(cfg));
  data::RankingDataOptions ro;
  ro.data = flags.data;
  ro.split_dir = flags.split_dir;
  ro.split = split_options;
  ADREC_ASSIGN_OR_RETURN(data::RankingData prepared, data::PrepareRankingData(std::move(config_spec), ro));
  const data::Dataset& ds = prepared.ds;
  const data::Split& split = prepared.split;
  const data::FeatureSpec& spec = prepared.spec;

  std::error_code ec;
  std::filesystem::create_directories(flags.out, ec);
  if (ec) return IoError("cannot create " + flags.out + ": " + ec.message());

  nlohmann::ordered_json summary;
  summary["out"] = flags.out;
  summary["split"] = split.method;
  nlohmann::ordered_json part_info = nlohmann::ordered_json::object();
  for (data::SplitPart p : parts) {
    const std::string name(data::SplitPartName(p));
    const data::SampleSet& samples = p == data::SplitPart::kTrain   ? prepared.train
                                     : p == data::SplitPart::kValid ? prepared.valid
                                                                    : prepared.test;
    ADREC_ASSIGN_OR_RETURN(std::vector<std::string> files, WritePart(ds, spec, samples, name, flags.out));
    const size_t T = spec.targets.size();
    std::vector<double> positives(T, 0.0), defined(T, 0.0);
    for (size_t i = 0; i < samples.size(); ++i) {
      for (size_t t = 0; t < T; ++t) {
        positives[t] += samples.labels[i * T + t] * samples.mask[i * T + t];
        defined[t] += samples.mask[i * T + t];
      }
    }
    part_info[name] = {{"samples", samples.size()}, {"positives", positives}, {"defined", defined}, {"files", files}};
  }

  // What a reader needs beside the arrays: the bound spec, each sparse field's table and its
  // row mapping, the dense/text layout, the targets and the split.
  nlohmann::ordered_json j;
  j["format"] = "adrec-features";
  j["format_version"] = 1;
  j["dataset"] = {{"dir", flags.data}, {"name", ds.info.name}, {"events", ds.num_events()},
                  {"users", ds.num_users()}, {"items", ds.num_items()}};
  j["config"] = flags.config;
  nlohmann::ordered_json sj = {{"method", split.method}, {"seed", split.seed}};
  if (flags.split_dir.empty()) {
    sj["train_fraction"] = split_options.train_fraction;
    sj["valid_fraction"] = split_options.valid_fraction;
  } else {
    sj["dir"] = flags.split_dir;
  }
  j["split"] = sj;
  j["row_mapping"] = {{"fixed", "row = raw + 1 for 0 <= raw < rows - 1, else 0 (unknown)"},
                      {"hashed", "row = XXH3-64(table name, raw) mod rows (adrec/embedding)"},
                      {"dynamic", "rows assigned as IDs arrive (adrec/embedding); not reproducible from the raw values alone"}};
  j["tables"] = nlohmann::ordered_json::array();
  for (const data::TableSpec& t : spec.tables) {
    j["tables"].push_back({{"name", t.name}, {"kind", data::TableKindName(t.kind)}, {"rows", t.rows},
                           {"dim", t.dim}, {"init_std", t.init_std}, {"optimizer", t.optimizer}});
  }
  j["sparse_fields"] = nlohmann::ordered_json::array();
  for (const data::FieldSpec* f : spec.SparseFields()) {
    j["sparse_fields"].push_back({{"name", f->name}, {"kind", data::FieldKindName(f->kind)}, {"source", f->source},
                                  {"table", f->table.empty() ? f->name : f->table},
                                  {"pooling", f->pooling == data::Pooling::kMean ? "mean" : "sum"}});
  }
  j["dense_fields"] = nlohmann::ordered_json::array();
  for (const data::FieldSpec* f : spec.DenseFields()) {
    j["dense_fields"].push_back({{"name", f->name}, {"width", f->width}, {"normalize", f->normalize}});
  }
  j["dense_width"] = spec.DenseWidth();
  j["text_fields"] = nlohmann::ordered_json::array();
  for (const data::FieldSpec* f : spec.TextFields()) j["text_fields"].push_back({{"name", f->name}, {"source", f->source}, {"width", f->width}});
  j["targets"] = nlohmann::ordered_json::array();
  for (const data::TargetSpec& t : spec.targets) j["targets"].push_back({{"name", t.name}, {"weight", t.weight}});
  j["scenes"] = ds.scenes;
  j["parts"] = part_info;
  j["spec"] = spec.ToJson();
  const auto json_path = std::filesystem::path(flags.out) / "features.json";
  // Plain like the .npy files it describes: outputs for other tools.
  ADREC_RETURN_IF_ERROR(AtomicWriteFile(json_path, j.dump(2) + "\n", /*plain=*/true));

  nlohmann::ordered_json counts = nlohmann::ordered_json::object();
  for (auto it = part_info.begin(); it != part_info.end(); ++it) counts[it.key()] = (*it)["samples"];
  summary["samples"] = counts;
  summary["sparse_fields"] = j["sparse_fields"].size();
  summary["dense_width"] = spec.DenseWidth();
  summary["targets"] = spec.targets.size();
  summary["features_json"] = json_path.string();
  PrintResult(ctx, summary);
  return Status::Ok();
}

}  // namespace

void AddFeaturesCommand(CLI::App& app, Context& ctx) {
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "features", "Write the arrays a ranking model sees (BuildBatch of the config's features and split) as .npy files");
  cmd->add_option("--data", flags->data, "Dataset directory")->required();
  cmd->add_option("--config", flags->config, "Config TOML ([data] split, [features]; see configs/)")->required();
  cmd->add_option("--out", flags->out, "Output directory (<part>.<field>.ids.npy ..., features.json)")->required();
  cmd->add_option("--split", flags->split_dir, "Split directory from `adrec split` (default: the config's [data] split)");
  cmd->add_option("--parts", flags->parts, "Parts to write")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::IsMember({"train", "valid", "test"}));
  AddJsonFlag(cmd, ctx);
  cmd->callback([flags, &ctx] {
    ctx.run = [flags, &ctx]() -> Status { return Run(*flags, ctx); };
  });
}

}  // namespace adrec::cli
