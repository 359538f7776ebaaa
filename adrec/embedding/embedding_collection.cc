// The batch → ModelInput step: per table, the unique rows its fields touch become one small leaf
// tensor; fields read it by index (categorical) or pool it (multi-hot, sequence), so autograd
// accumulates every row's gradient across fields and repeats, and Step applies it row-wise.
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "adrec/core/hash.h"
#include "adrec/embedding/embedding.h"
#include "adrec/embedding/embedding_table_internal.h"

namespace adrec::embedding {
namespace {

// Rows of one table touched by a batch, deduplicated in order of first appearance: a function of
// the batch alone (no thread timing), so the leaf's row order and hence every sum is reproducible.
class FirstSeenUnique {
 public:
  // inverse[i] = position of rows[i] in unique().
  void Run(std::span<const int64_t> rows, int64_t* inverse) {
    size_t cap = 16;
    while (cap < 2 * rows.size()) cap <<= 1;
    keys_.assign(cap, -1);
    pos_.resize(cap);
    unique_.clear();
    const size_t mask = cap - 1;
    for (size_t i = 0; i < rows.size(); ++i) {
      const int64_t r = rows[i];
      // Fibonacci hashing: rows of a hashed table are already uniform; dynamic rows are dense.
      size_t s = static_cast<size_t>((static_cast<uint64_t>(r) * 0x9E3779B97F4A7C15ULL) >> 32) & mask;
      while (keys_[s] != -1 && keys_[s] != r) s = (s + 1) & mask;
      if (keys_[s] == -1) {
        keys_[s] = r;
        pos_[s] = static_cast<int64_t>(unique_.size());
        unique_.push_back(r);
      }
      inverse[i] = pos_[s];
    }
  }
  const std::vector<int64_t>& unique() const { return unique_; }

 private:
  std::vector<int64_t> keys_, pos_, unique_;
};

torch::Tensor VectorTensor(const std::vector<int64_t>& v) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(v.size())}, torch::kLong);
  if (!v.empty()) std::memcpy(t.data_ptr<int64_t>(), v.data(), v.size() * sizeof(int64_t));
  return t;
}

// The backward of PoolOnCpu: scatters each sample's gradient onto the leaf rows it read.
// Autograd's index_select / embedding_bag backward goes through index_add, whose CPU kernel
// costs a dispatch per index; this is one sequential loop per field, so its sums run in a fixed
// order (reproducible). A plain Node rather than autograd::Function: GCC 13 reports a false
// -Warray-bounds inside Function::apply.
struct PooledGatherBackward final : torch::autograd::Node {
  torch::Tensor inverse, offsets;  // offsets empty: one value per sample
  bool mean = false;
  int64_t rows = 0;

  std::string name() const override { return "adrec::PooledGatherBackward"; }
  void release_variables() override {
    inverse.reset();
    offsets.reset();
  }
  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    if (!grads[0].defined()) return {torch::Tensor()};
    torch::Tensor go = grads[0].contiguous();
    const int64_t dim = go.size(1), batch = go.size(0);
    torch::Tensor grad = torch::zeros({rows, dim}, go.options());
    const float* g = go.data_ptr<float>();
    const int64_t* inv = inverse.data_ptr<int64_t>();
    float* out = grad.data_ptr<float>();
    if (offsets.numel() == 0) {
      for (int64_t b = 0; b < batch; ++b) {
        float* r = out + inv[b] * dim;
        for (int64_t d = 0; d < dim; ++d) r[d] += g[b * dim + d];
      }
    } else {
      const int64_t* off = offsets.data_ptr<int64_t>();
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t len = off[b + 1] - off[b];
        const float scale = mean && len > 1 ? 1.f / static_cast<float>(len) : 1.f;
        const float* gb = g + b * dim;
        for (int64_t j = off[b]; j < off[b + 1]; ++j) {
          float* r = out + inv[j] * dim;
          for (int64_t d = 0; d < dim; ++d) r[d] += scale * gb[d];
        }
      }
    }
    return {grad};
  }
};

// Sum or mean of leaf rows per sample over CSR offsets (empty offsets: one value per sample, a
// plain gather) on the CPU, samples in parallel (each writes its own output row).
torch::Tensor PoolOnCpu(const torch::Tensor& leaf, const torch::Tensor& inverse, const torch::Tensor& offsets,
                        bool mean) {
  const bool bags = offsets.numel() > 0;
  const int64_t dim = leaf.size(1);
  const int64_t batch = bags ? offsets.numel() - 1 : inverse.numel();
  torch::Tensor out = torch::empty({batch, dim}, leaf.options().requires_grad(false));
  const float* w = leaf.data_ptr<float>();  // leaves are made contiguous by GatherRows
  const int64_t* inv = inverse.data_ptr<int64_t>();
  const int64_t* off = bags ? offsets.data_ptr<int64_t>() : nullptr;
  float* o = out.data_ptr<float>();
  at::parallel_for(0, batch, 256, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      float* ob = o + b * dim;
      if (!off) {
        std::memcpy(ob, w + inv[b] * dim, dim * sizeof(float));
        continue;
      }
      std::fill(ob, ob + dim, 0.f);
      for (int64_t j = off[b]; j < off[b + 1]; ++j) {
        const float* wr = w + inv[j] * dim;
        for (int64_t d = 0; d < dim; ++d) ob[d] += wr[d];
      }
      const int64_t len = off[b + 1] - off[b];
      if (mean && len > 1) {
        const float scale = 1.f / static_cast<float>(len);
        for (int64_t d = 0; d < dim; ++d) ob[d] *= scale;
      }
    }
  });
  if (torch::autograd::compute_requires_grad(leaf)) {
    auto node = std::shared_ptr<PooledGatherBackward>(new PooledGatherBackward(), torch::autograd::deleteNode);
    node->set_next_edges(torch::autograd::collect_next_edges(leaf));
    node->inverse = inverse;
    node->offsets = offsets;
    node->mean = mean;
    node->rows = leaf.size(0);
    torch::autograd::set_history(out, node);
  }
  return out;
}

// weight[rows] on the CPU, one row copy each: what index_select does, without its dispatch, so
// it can run inside the per-table parallel phase.
torch::Tensor GatherRows(const torch::Tensor& weight, const std::vector<int64_t>& rows) {
  TORCH_CHECK(weight.is_contiguous() && weight.scalar_type() == torch::kFloat, "internal: table weight layout");
  const int64_t dim = weight.size(1);
  torch::Tensor out = torch::empty({static_cast<int64_t>(rows.size()), dim}, weight.options());
  const float* w = weight.data_ptr<float>();
  float* o = out.data_ptr<float>();
  constexpr size_t kAhead = 8;  // the copies are cache-miss bound: start the misses early
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i + kAhead < rows.size()) __builtin_prefetch(w + rows[i + kAhead] * dim);
    std::memcpy(o + i * dim, w + rows[i] * dim, dim * sizeof(float));
  }
  return out;
}

}  // namespace

struct EmbeddingCollection::Impl {
  struct SparseField {
    const data::FieldSpec* spec = nullptr;
    int table = 0;
  };
  // The fields of one table, looked up together so their shared rows form one leaf.
  struct Group {
    int table = 0;
    int linear = -1;  // companion dim-1 table, or -1
    std::vector<int> fields;  // indices into sparse
  };
  struct Scratch {
    std::vector<int64_t> rows, linear_rows;
    FirstSeenUnique unique;
    // Made by the host phase: unique rows, each value's position among them, and on CPU the
    // gathered leaves (the gather is cache-miss bound, so tables gather in parallel).
    torch::Tensor unique_rows, inverse, leaf, linear_leaf;
  };

  data::FeatureSpec spec;
  CollectionOptions options;
  std::vector<std::unique_ptr<EmbeddingTable>> tables;  // the spec's tables, then their linear companions
  std::vector<SparseField> sparse;
  std::vector<Group> groups;
  std::vector<Scratch> scratch;  // per group
  int dense_width = 0;
  std::vector<int> text_widths;
  int world = 1, rank = 0;  // sharded: options.sharding.exchange's

  bool sharded() const { return world > 1; }
  bool row_mode() const { return options.sharding.mode == "row"; }
  // The rows of table `t` kept here (a linear companion is placed as its main table).
  TableOptions TableOptionsOf(int t) const {
    TableOptions o = options.table;
    if (!sharded() || Dynamic(t)) return o;  // a dynamic table keeps the IDs routed to it whole
    if (row_mode()) {
      o.shard = {rank, world};
    } else if (t % world != rank) {
      o.shard = {std::numeric_limits<int64_t>::max() / 2, 1};  // none
    }
    return o;
  }
  bool Dynamic(int t) const { return spec.tables[t].kind == data::TableKind::kDynamic; }
  // The rank whose dynamic table maps ID `id` of table `t` (row mode: a hash of the ID, with its
  // own salt so that the owners do not follow the table's row hash).
  int IdOwner(int t, int64_t id) const {
    return row_mode() ? static_cast<int>(HashCombine(static_cast<uint64_t>(id), 0xD1B54A32D192ED03ull) % world) : t % world;
  }
  // A dynamic owner's local row as a global row: Owner and Local below read it back.
  int64_t Encode(int owner, int64_t local) const { return row_mode() ? local * world + owner : local; }
  void ShardedMapIds(const data::Batch& batch, bool train, int64_t step);
  // Whether `name` is one of the row-aligned tensors of the table named by `prefix` ("<t>."):
  // its weight, its optimiser state and, for a dynamic table, its ID map.
  static bool RowTensor(const std::string& name, const std::string& prefix, bool dynamic) {
    return name == prefix + "weight" || name.rfind(prefix + "opt.", 0) == 0 ||
           (dynamic && (name == prefix + "ids" || name == prefix + "counts" || name == prefix + "last_step"));
  }
  // The positions of a dynamic table's rows (its ".ids", any device) whose IDs this rank owns,
  // after row 0 (the unknown row) when `with_row0`.
  std::vector<int64_t> OwnedIdRows(int t, const torch::Tensor& ids, bool with_row0) const {
    const torch::Tensor v = ids.to(torch::kCPU, torch::kLong).contiguous();
    const int64_t* id = v.data_ptr<int64_t>();
    std::vector<int64_t> keep;
    if (with_row0 && v.numel() > 0) keep.push_back(0);
    for (int64_t j = 1; j < v.numel(); ++j) {
      if (id[j] != -1 && IdOwner(t, id[j]) == rank) keep.push_back(j);
    }
    return keep;
  }
  // A dynamic table's state from every rank on rank 0, as one table's: rank 0's rows, then each
  // other rank's rows but its row 0 (every tensor of it is row-aligned with ".ids").
  void GatherDynamicState(const EmbeddingTable& table, bool with_optimizer,
                          std::vector<std::pair<std::string, torch::Tensor>>* out) const;
  // Owner rank and local row of global row `row` of the table at `t` (main table index).
  int Owner(int t, int64_t row) const { return row_mode() ? static_cast<int>(row % world) : t % world; }
  int64_t Local(int64_t row) const { return row_mode() ? row / world : row; }
  int64_t GlobalRows(int t) const { return static_cast<int64_t>(tables[t]->spec().rows); }
  // Which global rows of a table of `rows` rows rank r keeps.
  torch::Tensor RowsOf(int t, int r, int64_t rows) const {
    if (row_mode()) return torch::arange(std::min<int64_t>(r, rows), rows, world);
    return t % world == r ? torch::arange(rows) : torch::empty({0}, torch::kLong);
  }
  std::vector<int> main_of;  // per table: itself, or the table a linear companion belongs to
  int MainTable(int t) const { return main_of[t]; }
  int Width(const Group& g) const { return tables[g.table]->dim() + (g.linear >= 0 ? 1 : 0); }

  void ShardedForward(EmbeddingCollection::Lookup& lookup, std::vector<torch::Tensor>& leaves,
                      std::vector<torch::Tensor>& linear_leaves);
  void ShardedStep(EmbeddingCollection::Lookup& lookup, int64_t step);

  // Host tensor → the collection's device: pinned staging and a non-blocking copy on CUDA (the
  // caching host allocator keeps the staging buffer alive until the copy has run).
  torch::Tensor ToDevice(const torch::Tensor& host) const {
    const torch::Device device = options.table.device;
    if (device.is_cpu()) return host;
    torch::Tensor pinned = torch::empty(host.sizes(), host.options().pinned_memory(true));
    pinned.copy_(host);
    return pinned.to(device, /*non_blocking=*/true);
  }
};

// How a sharded lookup's rows travelled (per rank d and group g, flattened d·G + g).
struct ShardRoute {
  std::vector<int64_t> asked;   // rows this rank asked rank d for, of group g
  std::vector<int64_t> served;  // rows rank d asked this rank for, of group g
  std::vector<torch::Tensor> order;  // per group: positions among its unique rows, by owner
  torch::Tensor served_rows;         // the local rows served, by asking rank then group
};

namespace {
// Per (rank, group) counts times each group's width: elements per rank of a flat exchange.
std::vector<int64_t> PerRank(const std::vector<int64_t>& counts, const std::vector<int64_t>& widths, int world) {
  const size_t G = widths.size();
  std::vector<int64_t> out(world, 0);
  for (int d = 0; d < world; ++d) {
    for (size_t g = 0; g < G; ++g) out[d] += counts[d * G + g] * widths[g];
  }
  return out;
}
torch::Tensor CountsTensor(const std::vector<int64_t>& v, int world, torch::Device device) {
  return VectorTensor(v).view({world, -1}).to(device);
}
std::vector<int64_t> CountsVector(const torch::Tensor& t) {
  torch::Tensor c = t.cpu().contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}
}  // namespace

void EmbeddingCollection::Impl::GatherDynamicState(const EmbeddingTable& table, bool with_optimizer,
                                                   std::vector<std::pair<std::string, torch::Tensor>>* out) const {
  const int W = world;
  ShardExchange& ex = *options.sharding.exchange;
  std::vector<std::pair<std::string, torch::Tensor>> named = table.State(with_optimizer);
  const int64_t n = named.front().second.size(0);
  std::vector<int64_t> to_zero(W, 0), ones(W, 1);
  to_zero[0] = n;
  const torch::Device device = options.table.device;
  const std::vector<int64_t> sizes = CountsVector(ex.AllToAll(VectorTensor(to_zero).to(device), ones, ones));
  std::vector<int64_t> send(W, 0), recv(W, 0);
  send[0] = n;
  if (rank == 0) recv = sizes;
  for (auto& [name, t] : named) {
    const torch::Tensor got = ex.AllToAll(t.contiguous().to(device), send, recv);
    if (rank != 0) continue;
    std::vector<torch::Tensor> parts;
    int64_t at = 0;
    for (int r = 0; r < W; ++r) {
      parts.push_back(r == 0 ? got.narrow(0, 0, sizes[0]) : got.narrow(0, at + 1, sizes[r] - 1));
      at += sizes[r];
    }
    out->emplace_back(name, torch::cat(parts).to(t.device()));
  }
}

void EmbeddingCollection::Impl::ShardedMapIds(const data::Batch& batch, bool train, int64_t step) {
  std::vector<size_t> dyn;
  for (size_t g = 0; g < groups.size(); ++g) {
    if (Dynamic(groups[g].table)) dyn.push_back(g);
  }
  if (dyn.empty()) return;
  const int W = world;
  const size_t D = dyn.size();
  const torch::Device device = options.table.device;
  ShardExchange& ex = *options.sharding.exchange;
  // Each group's IDs (its fields' in order) by owner, remembering where each came from.
  std::vector<std::vector<int64_t>> ids(W * D), where(W * D);
  for (size_t k = 0; k < D; ++k) {
    const Group& g = groups[dyn[k]];
    int64_t at = 0;
    for (int f : g.fields) {
      for (int64_t id : batch.sparse[f].ids) {
        const int d = IdOwner(g.table, id);
        ids[d * D + k].push_back(id);
        where[d * D + k].push_back(at++);
      }
    }
  }
  std::vector<int64_t> asked(W * D), send(W, 0), flat;
  for (int d = 0; d < W; ++d) {
    for (size_t k = 0; k < D; ++k) {
      asked[d * D + k] = static_cast<int64_t>(ids[d * D + k].size());
      send[d] += asked[d * D + k];
      flat.insert(flat.end(), ids[d * D + k].begin(), ids[d * D + k].end());
    }
  }
  const std::vector<int64_t> ones(W, 1), ones_d(D, 1);
  const std::vector<int64_t> served = CountsVector(ex.AllToAll(CountsTensor(asked, W, device), ones, ones));
  const std::vector<int64_t> recv = PerRank(served, ones_d, W);
  const torch::Tensor got = ex.AllToAll(VectorTensor(flat).to(device), send, recv).cpu().contiguous();
  // Owner: map them in a fixed order (by asking rank, then group): admission and eviction see
  // one stream, as one process's table would.
  std::vector<int64_t> rows(got.numel()), linear_rows;
  const int64_t* g_ids = got.data_ptr<int64_t>();
  int64_t at = 0;
  for (int s = 0; s < W; ++s) {
    for (size_t k = 0; k < D; ++k) {
      const Group& g = groups[dyn[k]];
      const size_t n = static_cast<size_t>(served[s * D + k]);
      std::span<const int64_t> in(g_ids + at, n);
      std::span<int64_t> out(rows.data() + at, n);
      tables[g.table]->MapIds(in, out, train, step);
      if (g.linear >= 0) {
        linear_rows.resize(n);
        tables[g.linear]->MapIds(in, linear_rows, train, step);
        TORCH_CHECK(std::equal(linear_rows.begin(), linear_rows.end(), out.begin()), "internal: linear table of '",
                    tables[g.table]->spec().name, "' diverged from it");
      }
      for (int64_t& r : out) r = Encode(rank, r);
      at += static_cast<int64_t>(n);
    }
  }
  const torch::Tensor back = ex.AllToAll(VectorTensor(rows).to(device), recv, send).cpu().contiguous();
  const int64_t* b = back.data_ptr<int64_t>();
  at = 0;
  for (int d = 0; d < W; ++d) {
    for (size_t k = 0; k < D; ++k) {
      Scratch& sc = scratch[dyn[k]];
      for (int64_t pos : where[d * D + k]) sc.rows[pos] = b[at++];
    }
  }
}

void EmbeddingCollection::Impl::ShardedForward(EmbeddingCollection::Lookup& lookup, std::vector<torch::Tensor>& leaves,
                                               std::vector<torch::Tensor>& linear_leaves) {
  const int W = world;
  const size_t G = groups.size();
  if (G == 0) return;  // no sparse field: nothing to exchange (the same on every rank)
  const torch::Device device = options.table.device;
  ShardExchange& ex = *options.sharding.exchange;
  auto route = std::make_shared<ShardRoute>();
  route->asked.assign(W * G, 0);
  std::vector<int64_t> widths(G), ones(W, 1);
  // Requests: each group's unique rows by owner, as the owner's local rows.
  std::vector<std::vector<int64_t>> by_owner_pos(W * G), by_owner_local(W * G);
  for (size_t g = 0; g < G; ++g) {
    widths[g] = Width(groups[g]);
    for (int64_t i = 0; const int64_t row : scratch[g].unique.unique()) {
      const int d = Owner(groups[g].table, row);
      by_owner_pos[d * G + g].push_back(i++);
      by_owner_local[d * G + g].push_back(Local(row));
    }
  }
  std::vector<int64_t> ids, send_rows(W, 0);
  for (int d = 0; d < W; ++d) {
    for (size_t g = 0; g < G; ++g) {
      route->asked[d * G + g] = static_cast<int64_t>(by_owner_local[d * G + g].size());
      ids.insert(ids.end(), by_owner_local[d * G + g].begin(), by_owner_local[d * G + g].end());
      send_rows[d] += route->asked[d * G + g];
    }
  }
  for (size_t g = 0; g < G; ++g) {
    std::vector<int64_t> order;
    for (int d = 0; d < W; ++d) order.insert(order.end(), by_owner_pos[d * G + g].begin(), by_owner_pos[d * G + g].end());
    route->order.push_back(VectorTensor(order).to(device));
  }
  route->served = CountsVector(ex.AllToAll(CountsTensor(route->asked, W, device), ones, ones));
  const std::vector<int64_t> ones_w(G, 1);
  route->served_rows = ex.AllToAll(VectorTensor(ids).to(device), send_rows, PerRank(route->served, ones_w, W));
  // Serve: the asked rows of each group (with their linear weight), by asking rank then group.
  std::vector<torch::Tensor> parts{torch::empty({0}, torch::TensorOptions().device(device))};
  int64_t at = 0;
  for (int s = 0; s < W; ++s) {
    for (size_t g = 0; g < G; ++g) {
      const int64_t n = route->served[s * G + g];
      const torch::Tensor rows = route->served_rows.narrow(0, at, n);
      at += n;
      torch::Tensor v = tables[groups[g].table]->weight().index_select(0, rows);
      if (groups[g].linear >= 0) v = torch::cat({v, tables[groups[g].linear]->weight().index_select(0, rows)}, 1);
      parts.push_back(v.reshape({-1}));
    }
  }
  const torch::Tensor values = ex.AllToAll(torch::cat(parts), PerRank(route->served, widths, W), PerRank(route->asked, widths, W));
  // Unpack each group's rows (they come back by owner) into the order of its unique rows.
  std::vector<std::vector<torch::Tensor>> blocks(G);
  at = 0;
  for (int d = 0; d < W; ++d) {
    for (size_t g = 0; g < G; ++g) {
      const int64_t n = route->asked[d * G + g];
      blocks[g].push_back(values.narrow(0, at, n * widths[g]).view({n, widths[g]}));
      at += n * widths[g];
    }
  }
  leaves.resize(G);
  linear_leaves.resize(G);
  for (size_t g = 0; g < G; ++g) {
    const torch::Tensor got = torch::cat(blocks[g]);
    torch::Tensor all = torch::empty_like(got).index_copy_(0, route->order[g], got);
    const int64_t dim = tables[groups[g].table]->dim();
    leaves[g] = groups[g].linear >= 0 ? all.narrow(1, 0, dim).contiguous() : all;
    if (groups[g].linear >= 0) linear_leaves[g] = all.narrow(1, dim, 1).contiguous();
  }
  lookup.route = std::move(route);
}

void EmbeddingCollection::Impl::ShardedStep(EmbeddingCollection::Lookup& lookup, int64_t step) {
  const int W = world;
  const size_t G = groups.size();
  if (G == 0) return;
  const torch::Device device = options.table.device;
  ShardExchange& ex = *options.sharding.exchange;
  const ShardRoute& route = *lookup.route;
  std::vector<int64_t> widths(G), ones(W, 1), reached(W * G, 0);
  std::vector<torch::Tensor> by_owner(W * G);
  for (size_t g = 0; g < G; ++g) {
    widths[g] = Width(groups[g]);
    const EmbeddingCollection::Lookup::TableRead& read = lookup.reads[g];
    const torch::Tensor& leaf = lookup.touched[read.touched].leaf;
    torch::Tensor grad = leaf.grad().defined() ? leaf.grad() : torch::zeros_like(leaf);
    bool any = leaf.grad().defined();
    if (read.linear_touched >= 0) {
      const torch::Tensor& lin = lookup.touched[read.linear_touched].leaf;
      any = any || lin.grad().defined();
      grad = torch::cat({grad, lin.grad().defined() ? lin.grad() : torch::zeros_like(lin)}, 1);
    }
    for (int d = 0; d < W; ++d) reached[d * G + g] = any ? 1 : 0;
    // In the order the rows were asked for, then cut by owner.
    const torch::Tensor ordered = grad.to(torch::kFloat).index_select(0, route.order[g]);
    int64_t at = 0;
    for (int d = 0; d < W; ++d) {
      const int64_t n = route.asked[d * G + g];
      by_owner[d * G + g] = ordered.narrow(0, at, n).reshape({-1});
      at += n;
    }
  }
  // Which groups a loss reached on some rank: rows of the others get no update, as in one process.
  const std::vector<int64_t> reached_from = CountsVector(ex.AllToAll(CountsTensor(reached, W, device), ones, ones));
  std::vector<torch::Tensor> parts{torch::empty({0}, torch::TensorOptions().device(device))};
  for (int d = 0; d < W; ++d) {
    for (size_t g = 0; g < G; ++g) parts.push_back(by_owner[d * G + g]);
  }
  const torch::Tensor grads = ex.AllToAll(torch::cat(parts), PerRank(route.asked, widths, W), PerRank(route.served, widths, W));
  // Owner: every rank's gradient of each served row, summed per row and applied once.
  std::vector<std::vector<torch::Tensor>> rows(G), values(G);
  int64_t at_rows = 0, at_values = 0;
  for (int s = 0; s < W; ++s) {
    for (size_t g = 0; g < G; ++g) {
      const int64_t n = route.served[s * G + g];
      rows[g].push_back(route.served_rows.narrow(0, at_rows, n));
      values[g].push_back(grads.narrow(0, at_values, n * widths[g]).view({n, widths[g]}));
      at_rows += n;
      at_values += n * widths[g];
    }
  }
  for (size_t g = 0; g < G; ++g) {
    bool any = false;
    for (int s = 0; s < W; ++s) any = any || reached_from[s * G + g] != 0;
    const torch::Tensor r = torch::cat(rows[g]);
    if (!any || r.numel() == 0) continue;
    const auto [unique, inverse, counts] = torch::_unique2(r, /*sorted=*/true, /*return_inverse=*/true);
    const torch::Tensor summed = torch::zeros({unique.size(0), widths[g]}, values[g][0].options())
                                     .index_add_(0, inverse, torch::cat(values[g]))
                                     .div_(static_cast<double>(W));
    const int64_t dim = tables[groups[g].table]->dim();
    tables[groups[g].table]->ApplyGradient(unique, summed.narrow(1, 0, dim).contiguous(), step);
    if (groups[g].linear >= 0) tables[groups[g].linear]->ApplyGradient(unique, summed.narrow(1, dim, 1).contiguous(), step);
  }
}

EmbeddingCollection::EmbeddingCollection() : impl_(std::make_unique<Impl>()) {}
EmbeddingCollection::~EmbeddingCollection() = default;

StatusOr<std::unique_ptr<EmbeddingCollection>> EmbeddingCollection::Create(const data::FeatureSpec& spec,
                                                                            const CollectionOptions& options) {
  std::unique_ptr<EmbeddingCollection> c(new EmbeddingCollection());
  Impl& m = *c->impl_;
  m.spec = spec;
  m.options = options;
  std::unordered_map<std::string, int> by_name;
  if (ShardExchange* ex = options.sharding.exchange; ex != nullptr) {
    if (options.sharding.mode != "row" && options.sharding.mode != "table") {
      return InvalidArgumentError("sharding mode '" + options.sharding.mode + "' is not one of row, table");
    }
    m.world = ex->world_size();
    m.rank = ex->rank();
  }
  for (const data::TableSpec& t : m.spec.tables) {
    if (!by_name.emplace(t.name, static_cast<int>(m.tables.size())).second) {
      return InvalidArgumentError("table '" + t.name + "' is declared twice");
    }
    data::TableSpec local = t;
    if (m.sharded() && m.row_mode() && t.kind == data::TableKind::kDynamic && t.max_rows > 0) {
      local.max_rows = (t.max_rows + m.world - 1) / m.world + 1;  // its share of the IDs, and its row 0
    }
    ADREC_ASSIGN_OR_RETURN(auto table, MakeEmbeddingTable(local, m.TableOptionsOf(static_cast<int>(m.tables.size()))));
    m.main_of.push_back(static_cast<int>(m.tables.size()));
    m.tables.push_back(std::move(table));
  }
  std::vector<int> group_of(m.tables.size(), -1);
  for (const data::FieldSpec& f : m.spec.fields) {
    if (f.kind == data::FieldKind::kDense) m.dense_width += f.width;
    if (f.kind == data::FieldKind::kText) m.text_widths.push_back(f.width);
    if (!f.is_sparse()) continue;
    const std::string& table = f.table.empty() ? f.name : f.table;
    auto it = by_name.find(table);
    if (it == by_name.end()) {
      return InvalidArgumentError("field '" + f.name + "': table '" + table + "' is not declared");
    }
    const int idx = static_cast<int>(m.sparse.size());
    m.sparse.push_back({&f, it->second});
    if (group_of[it->second] < 0) {
      group_of[it->second] = static_cast<int>(m.groups.size());
      m.groups.push_back({it->second, -1, {}});
    }
    m.groups[group_of[it->second]].fields.push_back(idx);
  }
  if (options.linear_terms) {
    for (Impl::Group& g : m.groups) {
      data::TableSpec lin = m.tables[g.table]->spec();
      lin.name += ".linear";
      lin.dim = 1;
      lin.storage_bits = 32;  // one weight per row: its scale and minimum would outweigh it
      lin.init_std = 0.f;  // first-order weights start at zero, as LR/FTRL assume
      if (!options.linear_optimizer.empty()) lin.optimizer = options.linear_optimizer;
      // On the rank of its table: a row and its linear weight travel together.
      ADREC_ASSIGN_OR_RETURN(auto table, MakeEmbeddingTableHashedAs(lin, m.TableOptionsOf(g.table), m.spec.tables[g.table].name));
      g.linear = static_cast<int>(m.tables.size());
      m.main_of.push_back(g.table);
      m.tables.push_back(std::move(table));
    }
  }
  m.scratch.resize(m.groups.size());
  return c;
}

EmbeddingCollection::Lookup EmbeddingCollection::Forward(const data::Batch& batch, bool train, int64_t step) {
  Impl& m = *impl_;
  const int64_t B = static_cast<int64_t>(batch.size);
  TORCH_CHECK(batch.sparse.size() == m.sparse.size(), "batch has ", batch.sparse.size(), " sparse fields, spec has ",
              m.sparse.size());
  for (size_t f = 0; f < m.sparse.size(); ++f) {
    const data::SparseFieldBatch& s = batch.sparse[f];
    TORCH_CHECK(static_cast<int64_t>(s.offsets.size()) == B + 1 && s.offsets.front() == 0 &&
                    s.offsets.back() == static_cast<int64_t>(s.ids.size()),
                "field '", m.sparse[f].spec->name, "': malformed CSR offsets");
  }

  const torch::Device device = m.options.table.device;
  const bool cpu = device.is_cpu();
  // Host phase, one table per task: map IDs to rows (dynamic tables allocate here), then
  // deduplicate. Tables are independent, so the result does not depend on the split.
  at::parallel_for(0, static_cast<int64_t>(m.groups.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t gi = begin; gi < end; ++gi) {
      const Impl::Group& g = m.groups[gi];
      Impl::Scratch& s = m.scratch[gi];
      size_t total = 0;
      for (int f : g.fields) total += batch.sparse[f].ids.size();
      s.rows.resize(total);
      s.inverse = torch::empty({static_cast<int64_t>(total)}, torch::kLong);
      if (m.sharded() && m.Dynamic(g.table)) continue;  // the owners map these (ShardedMapIds)
      size_t off = 0;
      for (int f : g.fields) {
        const std::vector<int64_t>& ids = batch.sparse[f].ids;
        std::span<int64_t> out(s.rows.data() + off, ids.size());
        m.tables[g.table]->MapIds(ids, out, train, step);
        if (g.linear >= 0 && m.tables[g.table]->spec().kind == data::TableKind::kDynamic) {
          // The dynamic companion sees the same ID stream, so it makes the same decisions; it
          // must, since both read the main table's rows.
          s.linear_rows.resize(ids.size());
          m.tables[g.linear]->MapIds(ids, s.linear_rows, train, step);
          TORCH_CHECK(std::memcmp(s.linear_rows.data(), out.data(), ids.size() * sizeof(int64_t)) == 0,
                      "internal: linear table of '", m.tables[g.table]->spec().name, "' diverged from it");
        }
        off += ids.size();
      }
      s.unique.Run(s.rows, s.inverse.data_ptr<int64_t>());
      s.unique_rows = VectorTensor(s.unique.unique());
      if (cpu && !m.sharded()) {
        // Quantised tables (a compressed bundle) decode the rows; float tables copy them.
        auto gather = [&](const EmbeddingTable& t) {
          torch::Tensor rows = t.DecodedRows(s.unique.unique());
          return rows.defined() ? rows : GatherRows(t.weight(), s.unique.unique());
        };
        s.leaf = gather(*m.tables[g.table]);
        if (g.linear >= 0) s.linear_leaf = gather(*m.tables[g.linear]);
      }
    }
  });

  if (m.sharded()) {
    // Dynamic tables' IDs go to the ranks that own them, which map (and admit) them.
    m.ShardedMapIds(batch, train, step);
    for (size_t gi = 0; gi < m.groups.size(); ++gi) {
      if (!m.Dynamic(m.groups[gi].table)) continue;
      Impl::Scratch& s = m.scratch[gi];
      s.unique.Run(s.rows, s.inverse.data_ptr<int64_t>());
      s.unique_rows = VectorTensor(s.unique.unique());
    }
  }

  // Index tensors of every table and field: on CUDA packed into one host buffer and sent with
  // one pinned, non-blocking copy (dozens of small copies cost more than the bytes).
  std::vector<torch::Tensor> host_index;  // per group: unique rows, inverse, then bag offsets
  std::vector<std::vector<int>> offsets_part(m.groups.size());
  for (size_t gi = 0; gi < m.groups.size(); ++gi) {
    Impl::Scratch& s = m.scratch[gi];
    host_index.push_back(std::move(s.unique_rows));
    host_index.push_back(std::move(s.inverse));
    for (int f : m.groups[gi].fields) {
      const bool single = m.sparse[f].spec->kind == data::FieldKind::kCategorical &&
                          static_cast<int64_t>(batch.sparse[f].ids.size()) == B;
      offsets_part[gi].push_back(single ? -1 : static_cast<int>(host_index.size()));
      // A copy, not a view of the batch: backward runs after the batch's buffers may be reused.
      if (!single) host_index.push_back(VectorTensor(batch.sparse[f].offsets));
    }
  }
  std::vector<torch::Tensor> index = host_index;
  if (!cpu && !host_index.empty()) {
    torch::Tensor packed = m.ToDevice(torch::cat(host_index));
    int64_t at = 0;
    for (size_t i = 0; i < index.size(); ++i) {
      index[i] = packed.narrow(0, at, host_index[i].numel());
      at += host_index[i].numel();
    }
  }

  Lookup lookup;
  // Sharded: every group's rows come from their owners (collective: every rank calls Forward
  // the same number of times).
  std::vector<torch::Tensor> sharded_leaves, sharded_linear;
  if (m.sharded()) m.ShardedForward(lookup, sharded_leaves, sharded_linear);
  ModelInput& in = lookup.input;
  in.sparse.resize(m.sparse.size());
  if (m.options.linear_terms) in.linear = torch::zeros({B, 1}, torch::TensorOptions().device(device));
  const torch::Tensor no_offsets = torch::empty({0}, torch::kLong);
  size_t part = 0;
  for (size_t gi = 0; gi < m.groups.size(); ++gi) {
    const Impl::Group& g = m.groups[gi];
    Impl::Scratch& s = m.scratch[gi];
    torch::Tensor rows = index[part++];
    torch::Tensor inverse = index[part++];
    torch::Tensor leaf = m.sharded() ? sharded_leaves[gi]
                         : cpu       ? std::move(s.leaf)
                                     : m.tables[g.table]->weight().index_select(0, rows);
    leaf.requires_grad_(train);
    lookup.touched.push_back({g.table, rows, leaf});
    Lookup::TableRead read;
    read.touched = static_cast<int>(lookup.touched.size()) - 1;
    torch::Tensor linear_leaf;
    if (g.linear >= 0) {
      linear_leaf = m.sharded() ? sharded_linear[gi]
                    : cpu       ? std::move(s.linear_leaf)
                                : m.tables[g.linear]->weight().index_select(0, rows);
      linear_leaf.requires_grad_(train);
      read.linear_touched = static_cast<int>(lookup.touched.size());
      lookup.touched.push_back({g.linear, rows, linear_leaf});
    }
    int64_t off = 0;
    for (size_t k = 0; k < g.fields.size(); ++k) {
      const int f = g.fields[k];
      const data::FieldSpec& field = *m.sparse[f].spec;
      const int64_t n = static_cast<int64_t>(batch.sparse[f].ids.size());
      torch::Tensor idx = inverse.narrow(0, off, n);
      off += n;
      torch::Tensor offsets;
      if (offsets_part[gi][k] >= 0) offsets = index[part++];
      const bool mean = field.pooling == data::Pooling::kMean;
      auto pool = [&](const torch::Tensor& table_leaf) -> torch::Tensor {
        if (cpu) return PoolOnCpu(table_leaf, idx, offsets.defined() ? offsets : no_offsets, mean);
        if (!offsets.defined()) return table_leaf.index_select(0, idx);
        // include_last_offset: offsets are the batch's B + 1 CSR offsets; empty lists pool to zeros.
        return std::get<0>(torch::embedding_bag(table_leaf, idx, offsets, /*scale_grad_by_freq=*/false, mean ? 1 : 0,
                                                /*sparse=*/false, /*per_sample_weights=*/{},
                                                /*include_last_offset=*/true));
      };
      in.sparse[f] = pool(leaf);
      if (linear_leaf.defined()) in.linear = in.linear + pool(linear_leaf);
      read.fields.push_back({f, idx, offsets, mean});
    }
    lookup.reads.push_back(std::move(read));
  }

  const auto f32 = torch::TensorOptions().dtype(torch::kFloat);
  TORCH_CHECK(batch.dense.size() == static_cast<size_t>(B * m.dense_width), "batch has ", batch.dense.size(),
              " dense values, expected ", B, " x ", m.dense_width);
  in.dense = m.dense_width == 0
                 ? torch::zeros({B, 0}, f32.device(device))
                 : m.ToDevice(torch::from_blob(const_cast<float*>(batch.dense.data()), {B, m.dense_width}, f32).clone());
  TORCH_CHECK(batch.text.size() == m.text_widths.size(), "batch has ", batch.text.size(), " text fields, spec has ",
              m.text_widths.size());
  for (size_t t = 0; t < m.text_widths.size(); ++t) {
    const int w = m.text_widths[t];
    TORCH_CHECK(batch.text[t].size() == static_cast<size_t>(B * w), "text field ", t, ": ", batch.text[t].size(),
                " values, expected ", B, " x ", w);
    in.text.push_back(
        m.ToDevice(torch::from_blob(const_cast<float*>(batch.text[t].data()), {B, w}, f32).clone()));
  }
  if (batch.scene.empty()) {
    in.scene = torch::zeros({B}, torch::TensorOptions().dtype(torch::kLong).device(device));
  } else {
    TORCH_CHECK(batch.scene.size() == batch.size, "batch has ", batch.scene.size(), " scenes for ", B, " samples");
    in.scene = m.ToDevice(
        torch::from_blob(const_cast<uint8_t*>(batch.scene.data()), {B}, torch::kUInt8).to(torch::kLong));
  }
  return lookup;
}

void EmbeddingCollection::Step(Lookup& lookup, int64_t step) {
  if (impl_->sharded()) {
    impl_->ShardedStep(lookup, step);
    return;
  }
  auto apply = [&](int64_t i) {
    Lookup::TableRows& t = lookup.touched[i];
    const torch::Tensor& grad = t.leaf.grad();
    if (!grad.defined()) return;  // the loss did not reach this table
    impl_->tables[t.table]->ApplyGradient(t.rows, grad, step);
  };
  const int64_t n = static_cast<int64_t>(lookup.touched.size());
  if (impl_->options.table.device.is_cpu()) {
    // Each entry is its own table, so tables update in parallel (rows of many small tables are
    // too few to split one table's update well).
    at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) apply(i);
    });
  } else {
    for (int64_t i = 0; i < n; ++i) apply(i);
  }
}

torch::Tensor EmbeddingCollection::PerSampleSquaredNorms(const Lookup& lookup,
                                                        const std::vector<torch::Tensor>& sparse_grads,
                                                        const torch::Tensor& linear_grad) {
  const int64_t B = lookup.input.batch_size();
  const torch::Device device = lookup.input.scene.device();
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(device);
  const auto i64 = torch::TensorOptions().dtype(torch::kLong).device(device);
  torch::Tensor out = torch::zeros({B}, f32);
  torch::NoGradGuard no_grad;
  for (const Lookup::TableRead& t : lookup.reads) {
    const torch::Tensor& leaf = lookup.touched[t.touched].leaf;
    const int64_t U = leaf.size(0), dim = leaf.size(1);
    const bool linear = t.linear_touched >= 0 && linear_grad.defined();
    // Each value read: its sample, its leaf row, and its share of the field's output.
    std::vector<torch::Tensor> keys, parts, linear_parts;
    for (const Lookup::FieldRead& r : t.fields) {
      if (r.index.numel() == 0) continue;
      torch::Tensor sample, weight;
      if (!r.offsets.defined()) {
        sample = torch::arange(B, i64);
        weight = torch::ones({B}, f32);
      } else {
        const torch::Tensor counts = r.offsets.narrow(0, 1, B) - r.offsets.narrow(0, 0, B);
        sample = torch::repeat_interleave(torch::arange(B, i64), counts);
        weight = r.mean ? counts.clamp_min(1).to(torch::kFloat).reciprocal().index_select(0, sample)
                        : torch::ones({sample.size(0)}, f32);
      }
      keys.push_back(sample * U + r.index);
      const torch::Tensor& g = r.field < static_cast<int>(sparse_grads.size()) ? sparse_grads[r.field] : torch::Tensor();
      parts.push_back(g.defined() ? g.to(torch::kFloat).index_select(0, sample) * weight.unsqueeze(1)
                                  : torch::zeros({sample.size(0), dim}, f32));
      if (linear) linear_parts.push_back(linear_grad.to(torch::kFloat).reshape({B}).index_select(0, sample) * weight);
    }
    if (keys.empty()) continue;
    // A row read twice by one sample (two fields, a repeated value) gets the sum of both parts.
    const auto [pairs, inverse, counts] = torch::_unique2(torch::cat(keys), /*sorted=*/false, /*return_inverse=*/true);
    torch::Tensor sq = torch::zeros({pairs.size(0), dim}, f32).index_add_(0, inverse, torch::cat(parts)).pow(2).sum(1);
    if (linear) sq += torch::zeros({pairs.size(0)}, f32).index_add_(0, inverse, torch::cat(linear_parts)).pow(2);
    out.index_add_(0, torch::div(pairs, U, "floor"), sq);
  }
  return out;
}

const data::FeatureSpec& EmbeddingCollection::spec() const { return impl_->spec; }
size_t EmbeddingCollection::num_tables() const { return impl_->tables.size(); }
EmbeddingTable& EmbeddingCollection::table(size_t i) { return *impl_->tables.at(i); }

std::vector<std::pair<std::string, torch::Tensor>> EmbeddingCollection::State(bool with_optimizer) const {
  const Impl& m = *impl_;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (size_t ti = 0; ti < m.tables.size(); ++ti) {
    if (m.sharded() && m.Dynamic(m.MainTable(static_cast<int>(ti)))) {
      m.GatherDynamicState(*m.tables[ti], with_optimizer, &out);
      continue;
    }
    for (auto& named : m.tables[ti]->State(with_optimizer)) {
      if (!m.sharded()) {
        out.push_back(std::move(named));
        continue;
      }
      // Every rank sends its rows to rank 0, which puts them back in global order.
      const int t = m.MainTable(static_cast<int>(ti));
      const int64_t rows = m.GlobalRows(static_cast<int>(ti));
      torch::Tensor local = named.second.contiguous();
      std::vector<int64_t> send(m.world, 0), recv(m.world, 0);
      send[0] = local.size(0);
      if (m.rank == 0) {
        for (int r = 0; r < m.world; ++r) recv[r] = m.RowsOf(t, r, rows).numel();
      }
      torch::Tensor got = m.options.sharding.exchange->AllToAll(local, send, recv);
      if (m.rank != 0) continue;
      std::vector<torch::Tensor> where;
      for (int r = 0; r < m.world; ++r) where.push_back(m.RowsOf(t, r, rows));
      std::vector<int64_t> shape = local.sizes().vec();
      shape[0] = rows;
      torch::Tensor whole = torch::empty(shape, local.options());
      whole.index_copy_(0, torch::cat(where).to(local.device()), got);
      out.emplace_back(named.first, whole);
    }
  }
  return out;
}

Status EmbeddingCollection::LoadState(const std::map<std::string, torch::Tensor>& tensors, bool with_optimizer) {
  const Impl& m = *impl_;
  for (size_t ti = 0; ti < m.tables.size(); ++ti) {
    const auto& table = m.tables[ti];
    if (!m.sharded()) {
      ADREC_RETURN_IF_ERROR(table->LoadState(tensors, with_optimizer));
      continue;
    }
    // This rank's rows of every tensor of the table ("<name>.weight", "<name>.opt.*"; a dynamic
    // table's ID map too): its global rows, or the rows of the IDs routed to it.
    const std::string prefix = table->spec().name + ".";
    const bool dynamic = m.Dynamic(m.MainTable(static_cast<int>(ti)));
    torch::Tensor mine;
    int64_t rows = 0;
    if (dynamic) {
      auto it = tensors.find(prefix + "ids");
      if (it == tensors.end()) return InvalidArgumentError("missing tensor '" + prefix + "ids'");
      rows = it->second.numel();
      mine = VectorTensor(m.OwnedIdRows(m.MainTable(static_cast<int>(ti)), it->second, /*with_row0=*/true));
    } else {
      rows = m.GlobalRows(static_cast<int>(ti));
      mine = m.RowsOf(m.MainTable(static_cast<int>(ti)), m.rank, rows);
    }
    std::map<std::string, torch::Tensor> local;
    for (const auto& [name, t] : tensors) {
      if (!Impl::RowTensor(name, prefix, dynamic)) continue;
      if (t.dim() == 0 || t.size(0) != rows) {
        return InvalidArgumentError("tensor '" + name + "' has " + std::to_string(t.dim() ? t.size(0) : 0) +
                                    " rows; table '" + table->spec().name + "' has " + std::to_string(rows));
      }
      local[name] = t.index_select(0, mine.to(t.device()));
    }
    ADREC_RETURN_IF_ERROR(table->LoadState(local, with_optimizer));
  }
  return Status::Ok();
}

bool EmbeddingCollection::sharded() const { return impl_->sharded(); }

std::vector<std::pair<std::string, torch::Tensor>> EmbeddingCollection::ShardState(bool with_optimizer) const {
  const Impl& m = *impl_;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (size_t ti = 0; ti < m.tables.size(); ++ti) {
    const int t = static_cast<int>(ti);
    for (auto& named : m.tables[ti]->State(with_optimizer)) out.push_back(std::move(named));
    if (!m.Dynamic(m.MainTable(t))) {
      out.emplace_back(m.tables[ti]->spec().name + ".global_rows", m.RowsOf(m.MainTable(t), m.rank, m.GlobalRows(t)));
    }
  }
  return out;
}

Status EmbeddingCollection::LoadShardStates(const std::vector<std::map<std::string, torch::Tensor>>& shards,
                                            bool with_optimizer) {
  const Impl& m = *impl_;
  for (size_t ti = 0; ti < m.tables.size(); ++ti) {
    const int t = static_cast<int>(ti), main = m.MainTable(t);
    const std::string prefix = m.tables[ti]->spec().name + ".";
    const bool dynamic = m.Dynamic(main);
    // Per shard: which of its rows this collection keeps, and (fixed, hashed) their global rows.
    std::map<std::string, std::vector<torch::Tensor>> parts;
    std::vector<torch::Tensor> kept_rows;
    for (size_t k = 0; k < shards.size(); ++k) {
      const auto& shard = shards[k];
      const std::string key = prefix + (dynamic ? "ids" : "global_rows");
      auto it = shard.find(key);
      if (it == shard.end()) return DataLossError("checkpoint shard " + std::to_string(k) + " has no tensor '" + key + "'");
      const torch::Tensor ids = it->second.to(torch::kCPU, torch::kLong).contiguous();
      std::vector<int64_t> keep;
      if (dynamic) {
        keep = m.OwnedIdRows(main, ids, /*with_row0=*/k == 0);  // one unknown row: the first shard's
      } else {
        const int64_t* v = ids.data_ptr<int64_t>();
        for (int64_t j = 0; j < ids.numel(); ++j) {
          if (m.Owner(main, v[j]) == m.rank) keep.push_back(j);
        }
      }
      const torch::Tensor sel = VectorTensor(keep);
      if (!dynamic) kept_rows.push_back(ids.index_select(0, sel));
      for (const auto& [name, tensor] : shard) {
        if (!Impl::RowTensor(name, prefix, dynamic)) continue;
        if (tensor.dim() == 0 || tensor.size(0) != ids.numel()) {
          return DataLossError("checkpoint shard " + std::to_string(k) + ": tensor '" + name + "' is not row-aligned with '" +
                               key + "'");
        }
        parts[name].push_back(tensor.index_select(0, sel.to(tensor.device())));
      }
    }
    std::map<std::string, torch::Tensor> local;
    torch::Tensor order;
    if (!dynamic) {
      // Local row k is global row offset + k·stride: the kept rows in ascending order, each once.
      const torch::Tensor rows = torch::cat(kept_rows);
      const torch::Tensor want = m.RowsOf(main, m.rank, m.GlobalRows(t));
      torch::Tensor sorted;
      std::tie(sorted, order) = rows.sort();
      if (!torch::equal(sorted, want)) {
        return DataLossError("checkpoint shards of table '" + m.tables[ti]->spec().name + "' hold " +
                             std::to_string(rows.numel()) + " of this rank's rows where it has " +
                             std::to_string(want.numel()) + " (missing or repeated rows)");
      }
    }
    for (auto& [name, list] : parts) {
      torch::Tensor whole = torch::cat(list);
      local[name] = dynamic ? whole : whole.index_select(0, order.to(whole.device()));
    }
    ADREC_RETURN_IF_ERROR(m.tables[ti]->LoadState(local, with_optimizer));
  }
  return Status::Ok();
}

uint64_t EmbeddingCollection::MemoryBytes() const {
  uint64_t bytes = 0;
  for (const auto& t : impl_->tables) bytes += t->MemoryBytes();
  return bytes;
}

}  // namespace adrec::embedding
