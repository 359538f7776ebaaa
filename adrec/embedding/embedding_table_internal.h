// Pieces the table kinds share (internal to adrec/embedding).
#pragma once

#include <memory>
#include <string_view>

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include "adrec/embedding/embedding.h"
#include "adrec/embedding/sparse_optimizer.h"

namespace adrec::embedding {

// The per-table generator: seeded by the options' seed and the table name, so two tables of one
// collection start from different rows and a run is reproducible.
at::Generator TableGenerator(const data::TableSpec& spec, const TableOptions& options);
// An uninitialised CPU tensor whose pages the kernel may back with 2 MiB huge pages (madvise
// MADV_HUGEPAGE before the first touch): a step's updates hit random rows of tables far larger
// than the TLB covers with 4 KiB pages. Small tensors and other devices get a plain torch::empty.
torch::Tensor EmptyTable(c10::IntArrayRef shape, torch::Dtype dtype, torch::Device device);
// N(0, init_std²) rows [n, dim], drawn on the CPU (the same numbers on every device), on `device`.
torch::Tensor InitialRows(int64_t n, int dim, float init_std, at::Generator& gen, torch::Device device);

// MakeEmbeddingTable, with a hashed table seeded by `hash_name` instead of its own name: a linear
// companion "<t>.linear" must map every value to the row its table "<t>" maps it to.
StatusOr<std::unique_ptr<EmbeddingTable>> MakeEmbeddingTableHashedAs(const data::TableSpec& spec,
                                                                     const TableOptions& options,
                                                                     std::string_view hash_name);

std::unique_ptr<EmbeddingTable> MakeDynamicTable(const data::TableSpec& spec, const TableOptions& options,
                                                 std::unique_ptr<SparseOptimizer> optimizer);

}  // namespace adrec::embedding
