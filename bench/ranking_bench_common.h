// What bench/train_ranking_bench.cc and bench/rank_latency_bench.cc share: flags, the data files
// of bench/reference/ranking_data.py (the layout is documented there), the Criteo-shaped feature
// spec (26 hashed tables, 13 dense columns) and the DCN-V2 they time against PyTorch eager.
// A torch translation unit: no spdlog (torch bundles another fmt).
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "adrec/core/config.h"
#include "adrec/data/features.h"
#include "adrec/models/model.h"
#include "adrec/embedding/embedding.h"
#include "adrec/tensor/device.h"

namespace adrec::bench {

[[noreturn]] inline void Die(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  std::exit(1);
}

// --name=value or --name value; a bare --name is "1".
class Flags {
 public:
  Flags(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) Die("unexpected argument '" + a + "'");
      a = a.substr(2);
      const size_t eq = a.find('=');
      if (eq != std::string::npos) {
        values_[a.substr(0, eq)] = a.substr(eq + 1);
      } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
        values_[a] = argv[++i];
      } else {
        values_[a] = "1";
      }
    }
  }
  std::string Str(const std::string& name, const std::string& def) {
    used_.insert(name);
    auto it = values_.find(name);
    return it == values_.end() ? def : it->second;
  }
  int64_t Int(const std::string& name, int64_t def) {
    const std::string s = Str(name, std::to_string(def));
    try {
      return std::stoll(s);
    } catch (...) {
      Die("--" + name + ": not an integer: '" + s + "'");
    }
  }
  double Double(const std::string& name, double def) {
    const std::string s = Str(name, std::to_string(def));
    try {
      return std::stod(s);
    } catch (...) {
      Die("--" + name + ": not a number: '" + s + "'");
    }
  }
  // Call after reading every flag: a typo is an error, not a silent default.
  void CheckAllUsed() const {
    for (const auto& [k, v] : values_) {
      if (!used_.count(k)) Die("unknown flag --" + k);
    }
  }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> used_;
};

inline std::vector<int64_t> IntList(const std::string& s) {
  std::vector<int64_t> out;
  size_t at = 0;
  while (at <= s.size()) {
    const size_t comma = s.find(',', at);
    const std::string part = s.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (!part.empty()) out.push_back(std::stoll(part));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

// ranking_data.py's files: dense.f32 [N, dense], ids.i64 [N, fields], labels.f32 [N].
struct RankingData {
  int64_t samples = 0, fields = 0, dense_width = 0;
  std::vector<float> dense;
  std::vector<int64_t> ids;
  std::vector<float> labels;
};

template <typename T>
std::vector<T> ReadRaw(const std::filesystem::path& path, size_t count) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die(path.string() + ": cannot open (run scripts/bench-ranking, which writes it)");
  std::vector<T> v(count);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(count * sizeof(T)));
  if (static_cast<size_t>(in.gcount()) != count * sizeof(T)) Die(path.string() + ": shorter than expected");
  return v;
}

inline RankingData LoadRankingData(const std::filesystem::path& dir, int64_t fields, int64_t dense_width) {
  RankingData d;
  d.fields = fields;
  d.dense_width = dense_width;
  std::error_code ec;
  const uint64_t bytes = std::filesystem::file_size(dir / "ids.i64", ec);
  if (ec) Die((dir / "ids.i64").string() + ": " + ec.message());
  if (bytes % (fields * sizeof(int64_t)) != 0) Die((dir / "ids.i64").string() + ": size is not a multiple of a row");
  d.samples = static_cast<int64_t>(bytes / (fields * sizeof(int64_t)));
  d.ids = ReadRaw<int64_t>(dir / "ids.i64", d.samples * fields);
  d.dense = ReadRaw<float>(dir / "dense.f32", d.samples * dense_width);
  d.labels = ReadRaw<float>(dir / "labels.f32", d.samples);
  return d;
}

// Fields C1..C26, each on its own hashed table of `rows` rows (XXH3 of the raw ID mod rows),
// one dense field of the 13 columns, one target.
// kind kHashed: `rows` per table; kDynamic: collision-free tables that start at `rows` capacity
// (0: the table's default) and grow as IDs arrive.
inline data::FeatureSpec CriteoSpec(int64_t fields, int64_t dense_width, uint64_t rows, int dim,
                                    data::TableKind kind = data::TableKind::kHashed) {
  data::FeatureSpec spec;
  for (int64_t f = 0; f < fields; ++f) {
    const std::string name = "C" + std::to_string(f + 1);
    data::TableSpec t;
    t.name = name;
    t.kind = kind;
    t.rows = rows;
    t.dim = dim;
    t.init_std = 0.01f;
    spec.tables.push_back(t);
    data::FieldSpec field;
    field.name = name;
    field.kind = data::FieldKind::kCategorical;
    field.source = "event." + name;
    field.table = name;
    spec.fields.push_back(field);
  }
  data::FieldSpec dense;
  dense.name = "I";
  dense.kind = data::FieldKind::kDense;
  dense.source = "event.I";
  dense.width = static_cast<int>(dense_width);
  spec.fields.push_back(dense);
  data::TargetSpec click;
  click.name = "click";
  spec.targets.push_back(click);
  return spec;
}

inline std::shared_ptr<models::RankingModel> MakeDcnV2(int64_t fields, int64_t dense_width, int dim,
                                                       const std::string& hidden, int64_t cross_layers,
                                                       int64_t low_rank = 0) {
  models::ModelShape shape;
  shape.sparse_dims.assign(fields, dim);
  shape.dense_width = static_cast<int>(dense_width);
  shape.targets = {"click"};
  const std::string toml = "[model]\nstructure = \"stacked\"\ncross_layers = " + std::to_string(cross_layers) +
                           "\nlow_rank = " + std::to_string(low_rank) + "\nhidden = [" + hidden + "]\ndropout = 0.0\n";
  auto cfg = Config::Parse(toml, "<bench>");
  if (!cfg.ok()) Die(cfg.status().ToString());
  auto model = models::MakeRankingModel("dcnv2", shape, *cfg, "model");
  if (!model.ok()) Die(model.status().ToString());
  return *model;
}

// Batch of `size` samples: field f of sample i is data row row_of(f, i); dense and label from
// row_of(-1, i).
inline void FillBatch(const RankingData& d, size_t size, const std::function<int64_t(int64_t, int64_t)>& row_of,
                      data::Batch* b) {
  b->Clear();
  b->size = size;
  b->sparse.resize(d.fields);
  for (int64_t f = 0; f < d.fields; ++f) {
    data::SparseFieldBatch& s = b->sparse[f];
    s.ids.resize(size);
    s.offsets.resize(size + 1);
    for (size_t i = 0; i <= size; ++i) s.offsets[i] = static_cast<int64_t>(i);
    for (size_t i = 0; i < size; ++i) s.ids[i] = d.ids[row_of(f, i) * d.fields + f];
  }
  b->dense.resize(size * d.dense_width);
  b->labels.resize(size);
  b->mask.assign(size, 1.f);
  for (size_t i = 0; i < size; ++i) {
    const int64_t r = row_of(-1, i);
    std::copy_n(d.dense.data() + r * d.dense_width, d.dense_width, b->dense.data() + i * d.dense_width);
    b->labels[i] = d.labels[r];
  }
}

// Peak resident set (VmHWM) of this process, MiB.
inline double PeakRssMiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  return -1;
}

inline torch::Device ParseDevice(const std::string& s) {
  auto device = adrec::tensor::ParseDevice(s);
  if (!device.ok()) Die(device.status().ToString());
  return *device;
}

inline void Sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// Latencies (µs, sorted) of `requests` calls of `fn` after `warmup` untimed ones, each call
// synchronised with the device: the latency benchmarks' loop.
template <typename Fn>
std::vector<double> LatenciesUs(const torch::Device& device, int warmup, int64_t requests, Fn&& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  Sync(device);
  std::vector<double> us;
  for (int64_t r = 0; r < requests; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    Sync(device);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  return us;
}

}  // namespace adrec::bench
