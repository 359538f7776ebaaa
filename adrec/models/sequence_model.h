// Generative sequence models (one file each: sasrec, hstu) behind one interface and a factory,
// as the ranking models: MakeSequenceModel("hstu", shape, cfg). A model encodes a user's item
// sequence causally — the state at position i has seen items 0..i only — and scores a next item
// by the dot product of that state with the item's embedding (the table the input also uses).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include "adrec/core/status.h"

namespace adrec {
class Config;
}

namespace adrec::models {

// Sequences are right-padded: a row holds its items oldest first, then zeros. Item IDs are
// 1-based (dataset item + 1); 0 is the padding row of the item table and never a prediction.
// Right padding lets the causal mask alone keep padding out of every real position's state.
struct SequenceInput {
  torch::Tensor items;       // [B, L] int64, L ≤ max_len
  torch::Tensor timestamps;  // [B, L] int64 unix seconds; HSTU's time bias reads it, SASRec not
  // Optional [B, L, dim]: added to each position's scaled item embedding (the HSTU ranker's
  // action and scene embeddings); undefined = items only.
  torch::Tensor extra = {};
};

struct SequenceShape {
  int64_t num_items = 0;  // dataset items; the table has num_items + 1 rows
  int64_t max_len = 200;  // longest sequence (learned positions)
};

// Options both models share ([model] keys of configs/seq_*.toml).
struct SequenceOptions {
  int64_t dim = 50;        // item embedding and hidden width (model.dim)
  int64_t blocks = 2;      // attention blocks (model.blocks)
  int64_t heads = 1;       // attention heads (model.heads); dim % heads == 0 for SASRec
  double dropout = 0.2;    // model.dropout
};

class SequenceModel : public torch::nn::Module {
 public:
  // Hidden states [B, L, dim] (rows at padded positions are defined but meaningless).
  virtual torch::Tensor Encode(const SequenceInput& input) = 0;
  // The item table [num_items + 1, dim] that scores are dot products with (row 0: padding).
  virtual torch::Tensor ItemTable() = 0;
  virtual std::string kind() const = 0;
  // Whether the state at position i has seen items 0..i only. A model that is not (BSARec's
  // frequency filter mixes the whole window) is read at the last real position only, and may
  // leave the other positions zero.
  virtual bool causal() const { return true; }
  virtual const SequenceShape& shape() const = 0;
};

// Reads the model's options from `cfg` under `section` (see the model headers and configs/).
// InvalidArgument naming the key for a bad option; a name that is not a sequence model of the registry lists them.
StatusOr<std::shared_ptr<SequenceModel>> MakeSequenceModel(std::string_view name, const SequenceShape& shape,
                                                           Config& cfg, std::string_view section = "model");

// Reads model.dim, model.blocks, model.heads, model.dropout (shared by every model).
Status ReadSequenceOptions(Config& cfg, std::string_view section, SequenceOptions* out);

// InvalidArgument naming both keys unless o.heads divides o.dim (models that split dim into heads).
Status CheckHeadsDivideDim(const Config& cfg, std::string_view section, std::string_view kind, const SequenceOptions& o);

// The HSTU reference's initialisation, for both models: items N(0, 0.02), positions
// N(0, 1/dim), each cut at two standard deviations; the padding row zero. (libtorch's default
// N(0, 1) items move by ~lr/1 per AdamW step: a thousand steps barely leave the start.)
void InitSequenceEmbeddings(torch::Tensor item_table, torch::Tensor positions);

// `count` blocks from `make()`, registered in order on `owner` as "blocks.<i>.*".
template <typename Block, typename Make>
std::vector<Block> RegisterBlocks(torch::nn::Module& owner, int64_t count, Make make) {
  auto list = owner.register_module("blocks", torch::nn::ModuleList());
  std::vector<Block> blocks;
  for (int64_t i = 0; i < count; ++i) {
    blocks.push_back(make());
    list->push_back(blocks.back());
  }
  return blocks;
}

// [L, L] bool, true where position i may attend to j (j ≤ i).
torch::Tensor CausalMask(int64_t length, const torch::Device& device);

}  // namespace adrec::models
