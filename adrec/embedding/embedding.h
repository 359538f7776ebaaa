// Embedding tables of three kinds (fixed vocabulary, hashed, dynamic collision-free) with their
// sparse optimisers, and the collection that turns a data::Batch into a ModelInput. A training
// step reads and writes only the rows its batch touches: lookups gather the batch's unique rows
// into a small leaf tensor, autograd fills its gradient, and Step applies it row-wise to the
// table with the table's optimiser state (no dense gradient over a million-row table).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "adrec/core/status.h"
#include "adrec/data/features.h"
#include "adrec/embedding/input.h"

namespace adrec::embedding {

// Sparse optimisers for embedding rows. adagrad: row-wise Adagrad (one accumulator per row, the
// mean of g² over the row, as TorchRec/FBGEMM's EXACT_ROWWISE_ADAGRAD). adam: lazy Adam (moments
// and bias correction per row, updated only when the row is touched; step counted per row).
// sgd: plain. ftrl: FTRL-proximal (McMahan et al. 2013) per coordinate, for LR's weights.
struct SparseOptimizerOptions {
  std::string kind = "adagrad";  // adagrad | adam | sgd | ftrl
  double lr = 0.05;
  double eps = 1e-8;
  double beta1 = 0.9, beta2 = 0.999;       // adam
  double weight_decay = 0.0;               // L2 on touched rows (adagrad, adam, sgd)
  double initial_accumulator = 0.0;        // adagrad
  double ftrl_alpha = 0.05, ftrl_beta = 1.0, ftrl_l1 = 0.0, ftrl_l2 = 0.0;  // ftrl (alpha is its lr)
};
// "adagrad, adam, sgd, ftrl"
inline constexpr const char* kSparseOptimizerNames = "adagrad, adam, sgd, ftrl";

// The rows of a table one process keeps in a distributed run: global rows offset, offset +
// stride, … (row-wise sharding: offset = rank, stride = world; table-wise: all or none).
struct RowShard {
  int64_t offset = 0, stride = 1;
  bool whole() const { return offset == 0 && stride == 1; }
};

struct TableOptions {
  SparseOptimizerOptions optimizer;  // the table spec's `optimizer` overrides `kind`
  torch::Device device = torch::kCPU;
  uint64_t seed = 42;
  // CPU tables apply the optimiser with a fused multi-threaded row loop; false selects the
  // torch-ops path that CUDA runs (tests compare the two on CPU).
  bool fused_cpu_optimizer = true;
  // Fixed and hashed tables: keep only these rows. MapIds still returns global rows; weight(),
  // ApplyGradient's rows, State and LoadState are local (row k here is global offset + k·stride).
  // Every process draws the whole table's initial rows and keeps its own, so a sharded run starts
  // where one process starts.
  RowShard shard;
};

class EmbeddingTable {
 public:
  virtual ~EmbeddingTable() = default;
  const data::TableSpec& spec() const { return spec_; }
  int dim() const { return spec_.dim; }

  // Maps raw values (data::SparseFieldBatch::ids) to row indices. Dynamic tables count
  // occurrences and allocate or evict rows only when `train` is true; unknown, unadmitted or
  // (serving) unseen IDs read row 0. `step` is the trainer's step (TTL and LRU clocks).
  virtual void MapIds(std::span<const int64_t> ids, std::span<int64_t> rows, bool train, int64_t step) = 0;
  // [rows, dim] float on the table's device; rows may grow between steps (dynamic tables).
  virtual torch::Tensor weight() const = 0;
  // Applies the gradient of the unique `rows` (int64 [n]) — grad is [n, dim] — with the table's
  // optimiser and its per-row state.
  virtual void ApplyGradient(const torch::Tensor& rows, const torch::Tensor& grad, int64_t step) = 0;
  virtual uint64_t rows_in_use() const = 0;
  // Bytes of weights plus the ID index (not optimiser state): the dynamic table's overhead check.
  virtual uint64_t MemoryBytes() const = 0;
  // Named tensors for a checkpoint or a bundle: "<table>.weight", dynamic tables add their ID
  // map, optimiser state is included when asked ("<table>.opt.*").
  virtual std::vector<std::pair<std::string, torch::Tensor>> State(bool with_optimizer) const = 0;
  // Quantised tables (spec().storage_bits < 32): `rows` decoded to float [n, dim]. Float tables
  // return an undefined tensor; their rows are read from weight().
  virtual torch::Tensor DecodedRows(std::span<const int64_t> rows) const { return {}; }
  // Restores what State wrote; InvalidArgument naming the tensor on a missing name or a shape
  // that does not match the spec.
  virtual Status LoadState(const std::map<std::string, torch::Tensor>& tensors, bool with_optimizer) = 0;

 protected:
  explicit EmbeddingTable(data::TableSpec spec) : spec_(std::move(spec)) {}
  data::TableSpec spec_;
};

StatusOr<std::unique_ptr<EmbeddingTable>> MakeEmbeddingTable(const data::TableSpec& spec, const TableOptions& options);

// Row-wise quantisation (FBGEMM's fused rowwise format, with the parameters beside the codes):
// each row of `weight` [rows, dim] becomes `bits`-bit codes (8: one byte each; 4: two per byte,
// low nibble first) of (x − min) / scale, scale = (max − min) / (2^bits − 1), with scale and
// min as float16 in `params` [rows, 2]. The codes are computed against the float16-rounded
// parameters, so decoding reproduces them exactly.
struct QuantizedRows {
  torch::Tensor codes;   // uint8 [rows, ceil(dim · bits / 8)]
  torch::Tensor params;  // float16 [rows, 2]: scale, min
};
QuantizedRows QuantizeRows(const torch::Tensor& weight, int bits);
// The float rows [n, dim] of `rows` (all rows when empty).
torch::Tensor DequantizeRows(const QuantizedRows& q, int bits, int dim, std::span<const int64_t> rows = {});

// Moves rows between the processes of a distributed run (adrec/train/distributed.h implements it
// over c10d). Collective: every process makes the same calls in the same order. A failure throws
// std::runtime_error naming the rank and the collective.
class ShardExchange {
 public:
  virtual ~ShardExchange() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Rows (dimension 0) of `input` go to ranks in runs of send_counts[r]; returns what each rank
  // sent here, rank by rank, recv_counts[r] rows from r.
  virtual torch::Tensor AllToAll(const torch::Tensor& input, const std::vector<int64_t>& send_counts,
                                 const std::vector<int64_t>& recv_counts) = 0;
};

// Model-parallel embeddings, as TorchRec shards them: "row" puts row g of every table on rank
// g % world, "table" puts table t (with its linear companion) whole on rank t % world. A lookup
// sends each unique row to its owner and gets the row back (all-to-all); Step sends each row's
// gradient to its owner, which sums what every rank sent and applies it once with its optimiser
// state, divided by the world size (each rank's loss is the mean over its share of the batch).
struct ShardingOptions {
  ShardExchange* exchange = nullptr;  // null: every table whole in this process
  std::string mode = "row";           // row | table
};

struct CollectionOptions {
  TableOptions table;
  ShardingOptions sharding;
  // Also a dim-1 table beside every table, summed into ModelInput::linear (LR/FM/DeepFM).
  bool linear_terms = false;
  // Optimiser of the linear tables ("" = table.optimizer.kind; LR configs use ftrl).
  std::string linear_optimizer;
};

struct ShardRoute;  // embedding_collection.cc

// The bound feature spec's tables, and the batch → ModelInput step.
class EmbeddingCollection {
 public:
  // InvalidArgument when the spec is not bound (fixed tables with 0 rows) or names a table
  // that is not declared.
  static StatusOr<std::unique_ptr<EmbeddingCollection>> Create(const data::FeatureSpec& spec, const CollectionOptions& options);
  ~EmbeddingCollection();

  // A looked-up batch: the model input plus what Step needs to route gradients back.
  struct Lookup {
    ModelInput input;
    struct TableRows {
      int table = 0;
      torch::Tensor rows;    // int64 [n] unique rows of the table touched by the batch
      torch::Tensor leaf;    // [n, dim], requires_grad when training
    };
    std::vector<TableRows> touched;
    // How each sparse field read its table's leaf (PerSampleSquaredNorms retraces it).
    struct FieldRead {
      int field = 0;          // index into input.sparse
      torch::Tensor index;    // int64 [n]: each value's row in the leaf
      torch::Tensor offsets;  // int64 [B + 1] CSR offsets; undefined: one value per sample
      bool mean = false;
    };
    struct TableRead {
      int touched = 0;          // the table's entry in `touched`
      int linear_touched = -1;  // its linear companion's, or -1
      std::vector<FieldRead> fields;
    };
    std::vector<TableRead> reads;
    // Sharded collections: how the rows travelled, for Step to send their gradients back.
    std::shared_ptr<ShardRoute> route;
  };
  // Copies the batch to the device (pinned host memory and non-blocking copies on CUDA) and
  // looks every sparse field up. With train, leaves require grad.
  Lookup Forward(const data::Batch& batch, bool train, int64_t step);
  // After loss.backward(): applies each touched table's leaf gradient to its rows.
  void Step(Lookup& lookup, int64_t step);
  // Per sample, the squared L2 norm of its own gradient over every embedding row it read, exact
  // where fields share a table or a value repeats (DP-SGD clips each sample to a norm):
  // sparse_grads[f] is the loss's gradient w.r.t. input.sparse[f] (undefined: none reached it),
  // linear_grad w.r.t. input.linear (undefined: none). Float [B] on the lookup's device.
  static torch::Tensor PerSampleSquaredNorms(const Lookup& lookup, const std::vector<torch::Tensor>& sparse_grads,
                                             const torch::Tensor& linear_grad);

  const data::FeatureSpec& spec() const;
  size_t num_tables() const;
  EmbeddingTable& table(size_t i);
  bool sharded() const;
  // Sharded: collective; the whole tables on rank 0 (its shard and every other rank's, rows back
  // in global order), nothing on the others.
  std::vector<std::pair<std::string, torch::Tensor>> State(bool with_optimizer) const;
  // Whole tables (a bundle or a checkpoint of any world size); a sharded collection keeps its rows.
  Status LoadState(const std::map<std::string, torch::Tensor>& tensors, bool with_optimizer);
  // A sharded checkpoint: this process's rows as they are (no collective), with each fixed or
  // hashed table's global row numbers as "<table>.global_rows" (a dynamic table's ".ids" say
  // whose its rows are).
  std::vector<std::pair<std::string, torch::Tensor>> ShardState(bool with_optimizer) const;
  // Every shard of such a checkpoint (any number of them, from any world size, or a whole
  // collection's ShardState): this collection keeps the rows it owns. DataLoss naming the table
  // when the shards miss rows or hold one twice.
  Status LoadShardStates(const std::vector<std::map<std::string, torch::Tensor>>& shards, bool with_optimizer);
  uint64_t MemoryBytes() const;

 private:
  EmbeddingCollection();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace adrec::embedding
