// Batches of a ranking model: the fields of a feature spec read for a list of samples into
// plain arrays (torch-free: adrec/embedding turns them into tensors).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "adrec/data/dataset.h"
#include "adrec/data/feature_spec.h"
#include "adrec/data/samples.h"

namespace adrec::data {

// One sparse field of a batch, CSR: sample b's raw values are ids[offsets[b], offsets[b+1]).
// Raw values are what the source holds (dense user/item ID, category code, scene, hour);
// the embedding table maps them to rows.
struct SparseFieldBatch {
  std::vector<int64_t> ids;
  std::vector<int64_t> offsets;  // size + 1
};

struct Batch {
  size_t size = 0;
  std::vector<SparseFieldBatch> sparse;  // FeatureSpec::SparseFields() order
  std::vector<float> dense;              // size × DenseWidth(), row-major, normalised
  std::vector<std::vector<float>> text;  // per text field: size × width
  std::vector<float> labels;             // size × targets
  std::vector<float> mask;               // size × targets
  // Per sample, for metrics (GAUC, per scene) and for the ground-truth checks.
  std::vector<uint64_t> event;
  std::vector<uint32_t> user;
  std::vector<uint8_t> scene;
  std::vector<float> truth;  // empty unless the dataset has ground truth
  void Clear();
};

// Fills `out` with the samples at `order` (indices into `samples`). Reads the dataset columns
// in place; reuses out's buffers.
void BuildBatch(const Dataset& ds, const FeatureSpec& spec, const SampleSet& samples,
                std::span<const uint64_t> order, Batch* out);

// Fills `out` with one row per item of `items` (dense item IDs): the spec's item-side fields
// (sources "item" and "item.<col>", dense and text fields on item columns) read from the
// catalogue, every other field empty as an unbound field reads (categorical: row 0). What an
// item tower reads: the retrieval index embeds every item of the catalogue this way.
void BuildItemBatch(const Dataset& ds, const FeatureSpec& spec, std::span<const uint32_t> items, Batch* out);

// Appends src's rows after dst's (both built with the same spec): one forward pass over the
// samples and extra item rows (a retrieval model's sampled negatives).
void AppendBatch(const Batch& src, Batch* dst);

}  // namespace adrec::data
