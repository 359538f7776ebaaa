// User-level samples for the HSTU ranker (models/hstu_ranker.h): each user's whole log as a
// sequence of event tokens, cut into windows of at most max_len events, with the labels of the
// impressions that are samples of a feature spec (the same click / download / conversion
// targets the CTR models learn). Torch-free: the trainer wraps the arrays in tensors.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "adrec/data/dataset.h"
#include "adrec/data/features.h"
#include "adrec/data/split.h"

namespace adrec::data {

// Events [begin, end) of one user; predictions are made for events at or after predict_from
// (earlier ones are context carried over from the previous window).
struct EventWindow {
  uint32_t user = 0;
  uint64_t begin = 0, end = 0, predict_from = 0;
};

// Windows over every user's log: one when it has at most max_len events, else windows of
// max_len every max_len / 2 events, each predicting its second half (the first window all of
// it), so every event is predicted once with at least max_len / 2 events of context. Only
// windows that predict a sample of `part` are kept. `sample_of` is SampleIndexOfEvents'.
std::vector<EventWindow> MakeEventWindows(const Dataset& ds, const std::vector<int64_t>& sample_of, const Split& split,
                                          SplitPart part, int64_t max_len);

// Maps events to their sample: sample_of[event] = index in `samples`, or -1.
std::vector<int64_t> SampleIndexOfEvents(const Dataset& ds, const SampleSet& samples);

// Right-padded [batch, length] token arrays (1-based items, actions, scenes, feed slots, UTC
// hours of the day; times) and, per
// position and target, label and mask (mask 1 only for samples of `part` at or after the
// window's predict_from). `sample[b * length + p]` = the sample index or -1.
struct EventBatch {
  int64_t batch = 0, length = 0, targets = 0;
  std::vector<int64_t> items, actions, scenes, slots, hours, times, sample;
  std::vector<int64_t> users;  // [batch]: each window's user
  std::vector<float> labels, mask;
};
void BuildEventBatch(const Dataset& ds, const SampleSet& samples, const std::vector<int64_t>& sample_of,
                     const Split& split, SplitPart part, std::span<const EventWindow> windows, EventBatch* out);

}  // namespace adrec::data
