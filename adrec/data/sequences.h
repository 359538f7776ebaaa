// Next-item data for the generative sequence models (SASRec, HSTU) on the leave-one-out protocol:
// per user the positive events of the train part in log order, and the held-out valid and test
// items; padded batches of item IDs, times and next-item targets for training and evaluation.
// Torch-free: the trainer wraps the arrays in tensors.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"
#include "adrec/data/split.h"

namespace adrec::data {

inline constexpr uint32_t kNoItem = std::numeric_limits<uint32_t>::max();

// One row per user with at least one positive train event (CSR over items and times).
struct UserSequences {
  std::vector<uint32_t> users;           // dataset user of row r
  std::vector<uint64_t> offsets{0};      // row r's train items: [offsets[r], offsets[r + 1])
  std::vector<uint32_t> items;           // dataset item IDs (0-based), oldest first
  std::vector<int64_t> times;            // unix seconds, aligned with items
  std::vector<uint32_t> valid_item, test_item;  // per row; kNoItem when the user has none
  std::vector<int64_t> valid_time, test_time;

  size_t size() const { return users.size(); }
  uint64_t length(size_t r) const { return offsets[r + 1] - offsets[r]; }
};

// Positives (split.positive_mask) of the train part become the sequences; the split's valid and
// test positives the held-out items. InvalidArgument when the split does not belong to `ds` or
// the dataset has no positive train event.
StatusOr<UserSequences> BuildUserSequences(const Dataset& ds, const Split& split);

// Right-padded [batch, length] arrays, row-major. Item IDs are 1-based (dataset item + 1), 0 is
// padding, as the models' tables expect.
struct SequenceBatch {
  int64_t batch = 0, length = 0;
  std::vector<int64_t> items, times;
  // Training: the next item after each position (1-based), 0 at the last real position and at
  // padding. Evaluation: one held-out item per row (1-based), [batch].
  std::vector<int64_t> targets;
  uint64_t truncated = 0;  // rows whose history was longer than max_len (the oldest items dropped)
};

// Training rows: each row's last max_len + 1 train items; inputs are all but the last, targets
// the same shifted by one. Rows with a single train item have no target and still count.
// `length` = the longest row in the batch (≤ max_len).
void BuildTrainBatch(const UserSequences& seqs, std::span<const uint32_t> rows, int64_t max_len, SequenceBatch* out);

// One next-item sample of the prefix form (the S3-Rec family of papers): row `row`'s train items
// before index `end` are the input (the newest max_len of them), items[end] the one target.
struct SequencePrefix {
  uint32_t row = 0;
  uint32_t end = 0;  // 0: the empty prefix, which predicts the row's first item from nothing
};

// Every prefix of every row: Σ (length − 1) samples, row by row, oldest target first; with
// `empty`, each row's empty prefix before them (Σ length samples, as the S3-Rec family's loaders
// make them).
std::vector<SequencePrefix> TrainPrefixes(const UserSequences& seqs, bool empty = false);

// Prefix rows, right-padded like training rows, with the one target at the last real position
// (position 0 of an empty prefix's all-padding row; 0 elsewhere), so the trainer reads them as it
// reads BuildTrainBatch's.
void BuildPrefixBatch(const UserSequences& seqs, std::span<const SequencePrefix> prefixes, int64_t max_len,
                      SequenceBatch* out);

// Evaluation rows (those with a held-out item for `part`, see EvalRows): history = the train
// items, plus the valid item when `part` is test (the published protocol), the newest max_len of
// them; target = the held-out item.
void BuildEvalBatch(const UserSequences& seqs, std::span<const uint32_t> rows, SplitPart part, int64_t max_len,
                    SequenceBatch* out);

// Rows that have a held-out item for `part` (valid or test).
std::vector<uint32_t> EvalRows(const UserSequences& seqs, SplitPart part);

}  // namespace adrec::data
