// Fixed-vocabulary and hashed tables (their rows never move), and the table factory.
#include <ATen/CPUGeneratorImpl.h>
#include <sys/mman.h>

#include <cstdint>

#include "adrec/core/hash.h"
#include "adrec/embedding/embedding.h"
#include "adrec/embedding/embedding_table_internal.h"

namespace adrec::embedding {

at::Generator TableGenerator(const data::TableSpec& spec, const TableOptions& options) {
  return at::make_generator<at::CPUGeneratorImpl>(HashCombine(options.seed, Hash64(spec.name)));
}

torch::Tensor EmptyTable(c10::IntArrayRef shape, torch::Dtype dtype, torch::Device device) {
  torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(dtype).device(device));
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t end = begin + t.nbytes();
  const uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1), last = end & ~(kHuge - 1);
  // Advice only: where the kernel has transparent huge pages off, the call fails and nothing changes.
  if (device.is_cpu() && last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#endif
  return t;
}

torch::Tensor InitialRows(int64_t n, int dim, float init_std, at::Generator& gen, torch::Device device) {
  // randn's own draw (normal_ on an empty tensor), into huge-page-advised memory.
  torch::Tensor rows = EmptyTable({n, dim}, torch::kFloat, torch::kCPU).normal_(0.0, 1.0, gen);
  if (init_std != 1.f) rows.mul_(init_std);
  return device.is_cpu() ? rows : rows.to(device);
}

namespace {

// A table whose row of a value is a pure function of the value: the weight is allocated once.
class StaticRowTable : public EmbeddingTable {
 public:
  StaticRowTable(const data::TableSpec& spec, const TableOptions& options, std::unique_ptr<SparseOptimizer> optimizer)
      : EmbeddingTable(spec), fused_(options.fused_cpu_optimizer), optimizer_(std::move(optimizer)) {
    if (quantized()) {  // rows arrive with LoadState; nothing to initialise or optimise
      const int64_t rows = static_cast<int64_t>(spec.rows);
      q_.codes = torch::zeros({rows, (spec.dim * spec.storage_bits + 7) / 8}, torch::kUInt8);
      q_.params = torch::zeros({rows, 2}, torch::kHalf);
      return;
    }
    at::Generator gen = TableGenerator(spec, options);
    const int64_t rows = static_cast<int64_t>(spec.rows);
    if (options.shard.whole()) {
      weight_ = InitialRows(rows, spec.dim, spec.init_std, gen, options.device);
    } else {
      // The whole table's draws, then this process's rows: the same start as one process.
      const torch::Tensor all = InitialRows(rows, spec.dim, spec.init_std, gen, torch::kCPU);
      const torch::Tensor mine = torch::arange(std::min(options.shard.offset, rows), rows, options.shard.stride);
      weight_ = all.index_select(0, mine).contiguous().to(options.device);
    }
    optimizer_->Init(weight_.size(0), spec.dim, options.device);
  }

  torch::Tensor weight() const override {
    return quantized() ? DequantizeRows(q_, spec_.storage_bits, spec_.dim) : weight_;
  }
  torch::Tensor DecodedRows(std::span<const int64_t> rows) const override {
    if (!quantized()) return {};
    if (rows.empty()) return torch::zeros({0, spec_.dim});  // DequantizeRows reads an empty list as all rows
    return DequantizeRows(q_, spec_.storage_bits, spec_.dim, rows);
  }
  void ApplyGradient(const torch::Tensor& rows, const torch::Tensor& grad, int64_t step) override {
    TORCH_CHECK(!quantized(), "table '", spec_.name, "' is stored in ", spec_.storage_bits,
                "-bit rows: a compressed bundle serves; train the bundle it was compressed from");
    optimizer_->Apply(weight_, rows, grad, fused_);
  }
  uint64_t rows_in_use() const override { return quantized() ? spec_.rows : static_cast<uint64_t>(weight_.size(0)); }
  uint64_t MemoryBytes() const override {
    return quantized() ? q_.codes.nbytes() + q_.params.nbytes() : weight_.numel() * sizeof(float);
  }

  std::vector<std::pair<std::string, torch::Tensor>> State(bool with_optimizer) const override {
    if (quantized()) return {{spec_.name + ".qcodes", q_.codes}, {spec_.name + ".qparams", q_.params}};
    std::vector<std::pair<std::string, torch::Tensor>> out{{spec_.name + ".weight", weight_}};
    if (with_optimizer) {
      for (auto& [name, t] : optimizer_->State()) out.emplace_back(spec_.name + ".opt." + name, t);
    }
    return out;
  }

  Status LoadState(const std::map<std::string, torch::Tensor>& tensors, bool with_optimizer) override {
    if (quantized()) {
      for (torch::Tensor* dst : {&q_.codes, &q_.params}) {
        const std::string name = spec_.name + (dst == &q_.codes ? ".qcodes" : ".qparams");
        auto it = tensors.find(name);
        if (it == tensors.end()) return InvalidArgumentError("missing tensor '" + name + "'");
        if (it->second.sizes() != dst->sizes() || it->second.scalar_type() != dst->scalar_type()) {
          return InvalidArgumentError("tensor '" + name + "' is " + c10::str(it->second.scalar_type(), it->second.sizes()) +
                                      ", expected " + c10::str(dst->scalar_type(), dst->sizes()));
        }
        dst->copy_(it->second);
      }
      return Status::Ok();
    }
    const std::string name = spec_.name + ".weight";
    auto it = tensors.find(name);
    if (it == tensors.end()) return InvalidArgumentError("missing tensor '" + name + "'");
    if (it->second.sizes() != weight_.sizes()) {
      return InvalidArgumentError("tensor '" + name + "' has shape " + c10::str(it->second.sizes()) + ", expected " +
                                  c10::str(weight_.sizes()));
    }
    if (with_optimizer) ADREC_RETURN_IF_ERROR(optimizer_->LoadState(tensors, spec_.name + ".opt.", weight_.size(0)));
    weight_.copy_(it->second);
    return Status::Ok();
  }

 protected:
  bool quantized() const { return spec_.storage_bits < 32; }
  bool fused_;
  torch::Tensor weight_;
  QuantizedRows q_;  // quantized() only
  std::unique_ptr<SparseOptimizer> optimizer_;
};

// Row 0 is the unknown value; raw value v (a vocabulary code) owns row v + 1.
class FixedTable final : public StaticRowTable {
 public:
  using StaticRowTable::StaticRowTable;
  void MapIds(std::span<const int64_t> ids, std::span<int64_t> rows, bool train, int64_t step) override {
    const int64_t known = static_cast<int64_t>(spec_.rows) - 1;
    for (size_t i = 0; i < ids.size(); ++i) rows[i] = ids[i] >= 0 && ids[i] < known ? ids[i] + 1 : 0;
  }
};

// XXH3 of the value's 8 bytes, seeded by the table name's XXH3 (not the field's), so fields that
// share a table share rows for equal values.
class HashedTable final : public StaticRowTable {
 public:
  HashedTable(const data::TableSpec& spec, const TableOptions& options, std::unique_ptr<SparseOptimizer> optimizer,
              std::string_view hash_name)
      : StaticRowTable(spec, options, std::move(optimizer)), seed_(Hash64(hash_name)) {}
  void MapIds(std::span<const int64_t> ids, std::span<int64_t> rows, bool train, int64_t step) override {
    const uint64_t buckets = spec_.rows;
    for (size_t i = 0; i < ids.size(); ++i) {
      rows[i] = static_cast<int64_t>(HashId(static_cast<uint64_t>(ids[i]), seed_) % buckets);
    }
  }

 private:
  uint64_t seed_;
};

}  // namespace

StatusOr<std::unique_ptr<EmbeddingTable>> MakeEmbeddingTable(const data::TableSpec& spec, const TableOptions& options) {
  return MakeEmbeddingTableHashedAs(spec, options, spec.name);
}

StatusOr<std::unique_ptr<EmbeddingTable>> MakeEmbeddingTableHashedAs(const data::TableSpec& spec,
                                                                     const TableOptions& options,
                                                                     std::string_view hash_name) {
  const std::string where = "table '" + spec.name + "': ";
  if (spec.dim < 1) return InvalidArgumentError(where + "dim must be >= 1");
  if (!(spec.init_std >= 0)) return InvalidArgumentError(where + "init_std must be >= 0");
  if (spec.storage_bits != 32) {
    if (spec.storage_bits != 8 && spec.storage_bits != 4) {
      return InvalidArgumentError(where + "storage_bits must be 32, 8 or 4");
    }
    if (spec.kind == data::TableKind::kDynamic) return InvalidArgumentError(where + "a dynamic table is stored as floats");
    if (!options.device.is_cpu()) {
      return InvalidArgumentError(where + "quantised rows (a compressed bundle) are served on the CPU, not " +
                                  options.device.str());
    }
  }
  SparseOptimizerOptions opt = options.optimizer;
  if (!spec.optimizer.empty()) opt.kind = spec.optimizer;
  auto optimizer = SparseOptimizer::Make(opt);
  if (!optimizer.ok()) return optimizer.status().WithContext(where.substr(0, where.size() - 2));
  switch (spec.kind) {
    case data::TableKind::kFixed:
      if (spec.rows < 1) return InvalidArgumentError(where + "fixed table has 0 rows (the feature spec is not bound)");
      return std::unique_ptr<EmbeddingTable>(new FixedTable(spec, options, std::move(*optimizer)));
    case data::TableKind::kHashed:
      if (spec.rows < 1) return InvalidArgumentError(where + "hashed table needs rows (buckets) >= 1");
      return std::unique_ptr<EmbeddingTable>(new HashedTable(spec, options, std::move(*optimizer), hash_name));
    case data::TableKind::kDynamic:
      if (!options.shard.whole()) {
        return InvalidArgumentError(where + "a dynamic table keeps every row it maps: a collection shards it by "
                                    "routing its IDs to their owners (ShardingOptions), not by RowShard");
      }
      if (spec.max_rows == 1) return InvalidArgumentError(where + "max_rows must be 0 (unbounded) or >= 2");
      if (spec.eviction != "lfu" && spec.eviction != "lru") {
        return InvalidArgumentError(where + "eviction must be lfu or lru, not '" + spec.eviction + "'");
      }
      return MakeDynamicTable(spec, options, std::move(*optimizer));
  }
  return InvalidArgumentError(where + "unknown table kind");
}

}  // namespace adrec::embedding
