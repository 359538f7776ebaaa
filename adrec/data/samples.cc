// Samples and their labels: which events of a split part are samples, each target's label
// and mask by its rule, and the per-user history indexes batches read.
#include "adrec/data/samples.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <set>

#include "adrec/core/thread_pool.h"
#include "adrec/data/features_internal.h"

namespace adrec::data {

using namespace features_internal;  // the sources, readers and error labels of the pipeline


namespace {

struct TargetPlan {
  TargetRule rule;
  uint8_t action;
  float threshold;
  int given;  // -1 = always defined
};

// Per-worker scratch of the "follows" rule, O(user's slice) whatever the catalog size: the
// slice's positions grouped by item (in log order within an item), and each position's sample
// slot (kNoSample for events that are not samples of this part).
struct FollowsScratch {
  static constexpr uint64_t kNoSample = ~uint64_t{0};
  std::vector<uint32_t> by_item;
  std::vector<uint64_t> slot;
};

}  // namespace

StatusOr<SampleSet> MakeSamples(const Dataset& ds, const FeatureSpec& spec, const Split* split, SplitPart part) {
  if (split) ADREC_RETURN_IF_ERROR(CheckSplitMatches(*split, ds));
  if (spec.sample_actions == 0) return InvalidArgumentError("MakeSamples: the feature spec has no sample actions");
  const size_t num_targets = spec.targets.size();
  std::vector<TargetPlan> plan;
  for (size_t t = 0; t < num_targets; ++t) {
    const TargetSpec& ts = spec.targets[t];
    int given = -1;
    if (!ts.given.empty()) {
      given = spec.TargetIndex(ts.given);
      if (given < 0 || static_cast<size_t>(given) >= t) {
        return InvalidArgumentError("MakeSamples: target '" + ts.name + "' is given '" + ts.given +
                                    "', which is not an earlier target");
      }
    }
    plan.push_back({ts.rule, static_cast<uint8_t>(ts.action), ts.threshold, given});
  }
  const EventColumns& ev = ds.events;
  const ActionMask sample_mask = spec.sample_actions;
  const auto sample_part = static_cast<uint8_t>(part);
  auto is_sample_action = [&](uint64_t i) { return (sample_mask >> ev.action[i]) & 1u; };
  auto is_sample = [&](uint64_t i) { return is_sample_action(i) && (!split || split->part[i] == sample_part); };

  const uint32_t users = ds.num_users();
  std::unique_ptr<ThreadPool> pool;
  if (ds.num_events() >= kParallelMinEvents) pool = std::make_unique<ThreadPool>(0);
  auto for_users = [&](const std::function<void(size_t, size_t)>& fn) {
    if (pool) pool->ParallelFor(users, fn, 256);
    else fn(0, users);
  };

  // Pass 1 counts each user's samples, so pass 2 writes every user's in place: the output is
  // in dataset order whatever the thread count.
  std::vector<uint64_t> first(uint64_t{users} + 1, 0);
  for_users([&](size_t ub, size_t ue) {
    for (size_t u = ub; u < ue; ++u) {
      auto [b, e] = ds.UserRange(static_cast<uint32_t>(u));
      uint64_t n = 0;
      for (uint64_t i = b; i < e; ++i) n += is_sample(i);
      first[u + 1] = n;
    }
  });
  for (uint32_t u = 0; u < users; ++u) first[u + 1] += first[u];
  SampleSet out;
  const uint64_t total = first[users];
  out.events.resize(total);
  out.labels.assign(total * num_targets, 0.f);
  out.mask.assign(total * num_targets, 1.f);

  const bool any_follows = std::any_of(plan.begin(), plan.end(), [](const TargetPlan& p) { return p.rule == TargetRule::kFollows; });
  for_users([&](size_t ub, size_t ue) {
    FollowsScratch scratch;
    for (size_t u = ub; u < ue; ++u) {
      // Plain variables, not a structured binding: clang < 16 cannot capture bindings in lambdas.
      const auto range = ds.UserRange(static_cast<uint32_t>(u));
      const uint64_t b = range.first, e = range.second;
      const uint64_t s0 = first[u], s1 = first[u + 1];
      if (s0 == s1) continue;
      uint64_t k = s0;
      if (any_follows) scratch.slot.assign(e - b, FollowsScratch::kNoSample);
      for (uint64_t i = b; i < e; ++i) {
        if (!is_sample(i)) continue;
        if (any_follows) scratch.slot[i - b] = k;
        out.events[k++] = i;
      }
      if (any_follows) {
        scratch.by_item.resize(e - b);
        std::iota(scratch.by_item.begin(), scratch.by_item.end(), 0u);
        std::sort(scratch.by_item.begin(), scratch.by_item.end(), [&](uint32_t x, uint32_t y) {
          return ev.item[b + x] != ev.item[b + y] ? ev.item[b + x] < ev.item[b + y] : x < y;
        });
      }
      for (size_t t = 0; t < num_targets; ++t) {
        const TargetPlan& p = plan[t];
        float* label = out.labels.data() + t;
        switch (p.rule) {
          case TargetRule::kValueAtLeast:
            for (uint64_t s = s0; s < s1; ++s) label[s * num_targets] = ev.value[out.events[s]] >= p.threshold;
            break;
          case TargetRule::kAction:
            for (uint64_t s = s0; s < s1; ++s) label[s * num_targets] = ev.action[out.events[s]] == p.action;
            break;
          case TargetRule::kFollows: {
            // Backward over each item's events: a sample's label is whether the target action on
            // its item was seen after it, up to and including the item's next sample event (of
            // any part); `pending` carries that from later events to earlier ones.
            const std::vector<uint32_t>& g = scratch.by_item;
            for (size_t end = g.size(); end > 0;) {
              const uint32_t item = ev.item[b + g[end - 1]];
              bool pending = false;
              for (; end > 0 && ev.item[b + g[end - 1]] == item; --end) {
                const uint64_t i = b + g[end - 1];
                const bool target = ev.action[i] == p.action;
                if (is_sample_action(i)) {
                  const uint64_t slot = scratch.slot[i - b];
                  if (slot != FollowsScratch::kNoSample) label[slot * num_targets] = pending;
                  pending = target;
                } else if (target) {
                  pending = true;
                }
              }
            }
            break;
          }
        }
        if (p.given >= 0) {
          const auto g = static_cast<size_t>(p.given);
          for (uint64_t s = s0; s < s1; ++s) {
            const size_t row = s * num_targets;
            out.mask[row + t] = (out.labels[row + g] == 1.f && out.mask[row + g] == 1.f) ? 1.f : 0.f;
          }
        }
      }
    }
  });

  out.history_actions = split && split->positive_mask ? split->positive_mask : DefaultPositiveMask(ds);
  // Index masks: each sequence field's, and each counter's action when it is sparse enough that
  // walking the log back would mostly skip other events (clicks among impressions).
  std::vector<ActionMask> index_masks;
  std::vector<uint64_t> action_count;
  for (const FieldSpec& f : spec.fields) {
    if (f.kind == FieldKind::kSequence) {
      index_masks.push_back(features_internal::HistoryMask(f, out.history_actions));
      continue;
    }
    auto src = features_internal::ParseSource(f.source);
    if (f.kind != FieldKind::kDense || !src || src->kind != features_internal::SourceKind::kRecent) continue;
    auto action = ParseAction(src->column);
    if (!action.ok()) continue;
    if (action_count.empty()) {
      action_count.assign(kNumActions, 0);
      for (uint8_t a : ev.action) ++action_count[a < kNumActions ? a : 0];
    }
    if (action_count[static_cast<size_t>(*action)] <= ds.num_events() / kCounterIndexMaxShare) {
      index_masks.push_back(ActionBit(*action));
    }
  }
  for (const ActionMask mask : index_masks) {
    if (std::any_of(out.history.begin(), out.history.end(), [&](const HistoryIndex& h) { return h.actions == mask; })) {
      continue;
    }
    HistoryIndex h;
    h.actions = mask;
    h.user_offsets.resize(uint64_t{users} + 1);
    for (uint32_t u = 0; u < users; ++u) {
      h.user_offsets[u] = h.events.size();
      auto [b, e] = ds.UserRange(u);
      for (uint64_t i = b; i < e; ++i) {
        if ((mask >> ev.action[i]) & 1u) h.events.push_back(i);
      }
    }
    h.user_offsets[users] = h.events.size();
    h.events.shrink_to_fit();
    out.history.push_back(std::move(h));
  }
  return out;
}

SampleSet PositiveSamples(const SampleSet& samples, size_t num_targets, size_t t) {
  SampleSet out;
  out.history_actions = samples.history_actions;
  out.history = samples.history;
  for (size_t s = 0; s < samples.size(); ++s) {
    if (samples.mask[s * num_targets + t] <= 0.f || samples.labels[s * num_targets + t] < 0.5f) continue;
    out.events.push_back(samples.events[s]);
    out.labels.insert(out.labels.end(), samples.labels.begin() + s * num_targets, samples.labels.begin() + (s + 1) * num_targets);
    out.mask.insert(out.mask.end(), samples.mask.begin() + s * num_targets, samples.mask.begin() + (s + 1) * num_targets);
  }
  return out;
}

}  // namespace adrec::data
