#include "adrec/data/sequences.h"

#include <algorithm>
#include <string>

namespace adrec::data {

StatusOr<UserSequences> BuildUserSequences(const Dataset& ds, const Split& split) {
  ADREC_RETURN_IF_ERROR(CheckSplitMatches(split, ds));
  const EventColumns& ev = ds.events;
  UserSequences out;
  for (uint32_t u = 0; u < ds.num_users(); ++u) {
    const auto range = ds.UserRange(u);
    uint32_t valid = kNoItem, test = kNoItem;
    int64_t valid_t = 0, test_t = 0;
    const size_t before = out.items.size();
    for (uint64_t i = range.first; i < range.second; ++i) {
      if (!split.IsPositive(ev.action[i])) continue;
      switch (split.PartOf(i)) {
        case SplitPart::kTrain:
          out.items.push_back(ev.item[i]);
          out.times.push_back(ev.time[i]);
          break;
        case SplitPart::kValid:
          valid = ev.item[i];
          valid_t = ev.time[i];
          break;
        case SplitPart::kTest:
          test = ev.item[i];
          test_t = ev.time[i];
          break;
      }
    }
    if (out.items.size() == before) continue;  // nothing to learn from or condition on
    out.users.push_back(u);
    out.offsets.push_back(out.items.size());
    out.valid_item.push_back(valid);
    out.valid_time.push_back(valid_t);
    out.test_item.push_back(test);
    out.test_time.push_back(test_t);
  }
  if (out.users.empty()) {
    return InvalidArgumentError("no positive train events (positives: " + ActionMaskNames(split.positive_mask) +
                                ", split " + split.method + "): nothing to build sequences from");
  }
  return out;
}

namespace {
void Reset(SequenceBatch* out, int64_t batch, int64_t length, bool eval) {
  out->batch = batch;
  out->length = length;
  out->items.assign(static_cast<size_t>(batch * length), 0);
  out->times.assign(static_cast<size_t>(batch * length), 0);
  out->targets.assign(static_cast<size_t>(eval ? batch : batch * length), 0);
  out->truncated = 0;
}
}  // namespace

void BuildTrainBatch(const UserSequences& seqs, std::span<const uint32_t> rows, int64_t max_len, SequenceBatch* out) {
  int64_t longest = 1;
  for (uint32_t r : rows) longest = std::max<int64_t>(longest, std::min<int64_t>(seqs.length(r) - 1, max_len));
  Reset(out, static_cast<int64_t>(rows.size()), longest, false);
  for (size_t b = 0; b < rows.size(); ++b) {
    const uint32_t r = rows[b];
    const uint64_t n = seqs.length(r);
    // Inputs are items [first, n - 1), targets [first + 1, n): at most max_len of each.
    const uint64_t inputs = std::min<uint64_t>(n > 0 ? n - 1 : 0, static_cast<uint64_t>(max_len));
    if (n - 1 > static_cast<uint64_t>(max_len)) ++out->truncated;
    const uint64_t first = seqs.offsets[r] + (n - 1 - inputs);
    int64_t* items = out->items.data() + b * longest;
    int64_t* times = out->times.data() + b * longest;
    int64_t* targets = out->targets.data() + b * longest;
    if (inputs == 0) {  // a single train item: visible, nothing to predict
      items[0] = seqs.items[seqs.offsets[r]] + 1;
      times[0] = seqs.times[seqs.offsets[r]];
      continue;
    }
    for (uint64_t k = 0; k < inputs; ++k) {
      items[k] = seqs.items[first + k] + 1;
      times[k] = seqs.times[first + k];
      targets[k] = seqs.items[first + k + 1] + 1;
    }
  }
}

std::vector<SequencePrefix> TrainPrefixes(const UserSequences& seqs, bool empty) {
  std::vector<SequencePrefix> out;
  out.reserve(seqs.items.size());
  const uint64_t first = empty ? 0 : 1;
  for (uint32_t r = 0; r < seqs.size(); ++r) {
    for (uint64_t e = first; e < seqs.length(r); ++e) out.push_back({r, static_cast<uint32_t>(e)});
  }
  return out;
}

void BuildPrefixBatch(const UserSequences& seqs, std::span<const SequencePrefix> prefixes, int64_t max_len,
                      SequenceBatch* out) {
  int64_t longest = 1;
  for (const SequencePrefix& p : prefixes) longest = std::max<int64_t>(longest, std::min<int64_t>(p.end, max_len));
  Reset(out, static_cast<int64_t>(prefixes.size()), longest, false);
  for (size_t b = 0; b < prefixes.size(); ++b) {
    const SequencePrefix& p = prefixes[b];
    const uint64_t keep = std::min<uint64_t>(p.end, static_cast<uint64_t>(max_len));
    if (p.end > keep) ++out->truncated;
    const uint64_t first = seqs.offsets[p.row] + (p.end - keep);
    int64_t* items = out->items.data() + b * longest;
    int64_t* times = out->times.data() + b * longest;
    for (uint64_t k = 0; k < keep; ++k) {
      items[k] = seqs.items[first + k] + 1;
      times[k] = seqs.times[first + k];
    }
    out->targets[b * longest + std::max<int64_t>(static_cast<int64_t>(keep), 1) - 1] = seqs.items[seqs.offsets[p.row] + p.end] + 1;
  }
}

std::vector<uint32_t> EvalRows(const UserSequences& seqs, SplitPart part) {
  const auto& held = part == SplitPart::kTest ? seqs.test_item : seqs.valid_item;
  std::vector<uint32_t> rows;
  for (uint32_t r = 0; r < seqs.size(); ++r) {
    if (held[r] != kNoItem && (part != SplitPart::kTest || seqs.valid_item[r] != kNoItem)) rows.push_back(r);
  }
  return rows;
}

void BuildEvalBatch(const UserSequences& seqs, std::span<const uint32_t> rows, SplitPart part, int64_t max_len,
                    SequenceBatch* out) {
  const bool test = part == SplitPart::kTest;
  auto history = [&](uint32_t r) { return seqs.length(r) + (test ? 1 : 0); };
  int64_t longest = 1;
  for (uint32_t r : rows) longest = std::max<int64_t>(longest, std::min<int64_t>(history(r), max_len));
  Reset(out, static_cast<int64_t>(rows.size()), longest, true);
  for (size_t b = 0; b < rows.size(); ++b) {
    const uint32_t r = rows[b];
    const uint64_t n = history(r);
    const uint64_t keep = std::min<uint64_t>(n, static_cast<uint64_t>(max_len));
    if (n > keep) ++out->truncated;
    int64_t* items = out->items.data() + b * longest;
    int64_t* times = out->times.data() + b * longest;
    for (uint64_t k = 0; k < keep; ++k) {
      const uint64_t h = n - keep + k;  // index into train items, then the valid item
      const bool is_valid = test && h == n - 1;
      items[k] = (is_valid ? seqs.valid_item[r] : seqs.items[seqs.offsets[r] + h]) + 1;
      times[k] = is_valid ? seqs.valid_time[r] : seqs.times[seqs.offsets[r] + h];
    }
    out->targets[b] = (test ? seqs.test_item[r] : seqs.valid_item[r]) + 1;
  }
}

}  // namespace adrec::data
