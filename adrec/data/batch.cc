// Batches: a feature spec's fields read for a list of samples into plain arrays.
#include "adrec/data/batch.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <set>

#include "adrec/core/log.h"
#include "adrec/data/features_internal.h"

namespace adrec::data {

using namespace features_internal;  // the sources, readers and error labels of the pipeline


void Batch::Clear() {
  size = 0;
  for (SparseFieldBatch& f : sparse) {
    f.ids.clear();
    f.offsets.clear();
  }
  dense.clear();
  for (auto& t : text) t.clear();
  labels.clear();
  mask.clear();
  event.clear();
  user.clear();
  scene.clear();
  truth.clear();
}

namespace {

using features_internal::DenseReader;
using features_internal::SourceKind;

enum class Normalize : uint8_t { kNone, kLog1p, kStandard };

// A field's source resolved to column pointers once per batch, so the per-sample loops only
// index arrays. `ok` false (an unbound spec) makes the field read empty/zero values.
struct ResolvedSparse {
  bool ok = false;
  FieldKind kind = FieldKind::kCategorical;
  SourceKind source = SourceKind::kUser;
  const uint32_t* row_of = nullptr;   // column row of a sample event (nullptr = the event)
  const uint32_t* values = nullptr;   // column codes / list values / history item column
  const uint64_t* offsets = nullptr;  // list columns
  const HistoryIndex* history = nullptr;  // nullptr = walk the user's log back
  ActionMask history_mask = 0;
  uint32_t max_len = 0;
  uint32_t max_age_s = 0;  // sequence: 0 = no age limit
};

struct ResolvedDense {
  bool ok = false;
  DenseReader reader;
  Normalize normalize = Normalize::kNone;
  float mean = 0.f, inv_std = 1.f;
};

struct ResolvedText {
  bool ok = false;
  const uint32_t* row_of = nullptr;
  const uint64_t* offsets = nullptr;
  const uint32_t* index = nullptr;
  const float* value = nullptr;
  size_t width = 0;
};

struct ResolvedSpec {
  std::vector<ResolvedSparse> sparse;
  std::vector<ResolvedDense> dense;
  std::vector<ResolvedText> text;
  size_t dense_width = 0;
};

const Column* FindColumn(const Dataset& ds, SourceKind k, std::string_view name) {
  switch (k) {
    case SourceKind::kUserColumn: return ds.user_table.Find(name);
    case SourceKind::kItemColumn:
    case SourceKind::kHistoryColumn: return ds.item_table.Find(name);
    case SourceKind::kEventColumn: return ds.event_table.Find(name);
    default: return nullptr;
  }
}

size_t RowsNeeded(const Dataset& ds, SourceKind k) {
  switch (k) {
    case SourceKind::kUserColumn: return ds.num_users();
    case SourceKind::kItemColumn:
    case SourceKind::kHistoryColumn: return ds.num_items();
    default: return ds.num_events();
  }
}

void WarnUnbound(const FieldSpec& f, std::string_view why) {
  WarnOnce("build-batch:" + f.name, "BuildBatch: field '" + f.name + "' (source '" + f.source +
                                        "') does not resolve on this dataset (" + std::string(why) +
                                        "); it reads as empty. Call FeatureSpec::Bind first.");
}

ResolvedSparse ResolveSparse(const Dataset& ds, const FieldSpec& f, const SampleSet& samples) {
  ResolvedSparse r;
  r.kind = f.kind;
  r.max_len = f.max_len;
  r.max_age_s = f.kind == FieldKind::kSequence ? f.max_age_s : 0;
  auto src = features_internal::ParseSource(f.source);
  if (!src || !features_internal::SourceFitsKind(src->kind, f.kind)) {
    WarnUnbound(f, "bad source");
    return r;
  }
  r.source = src->kind;
  if (f.kind == FieldKind::kSequence) {
    r.history_mask = features_internal::HistoryMask(f, samples.history_actions);
    for (const HistoryIndex& h : samples.history) {
      if (h.actions == r.history_mask && h.user_offsets.size() == uint64_t{ds.num_users()} + 1) r.history = &h;
    }
  }
  if (!src->column.empty()) {
    const Column* col = FindColumn(ds, src->kind, src->column);
    const bool list = f.kind == FieldKind::kMultiHot;
    const bool fits = col && (list ? col->type == ColumnType::kCategoricalList
                                   : col->type == ColumnType::kCategorical || col->type == ColumnType::kUInt32);
    if (!fits || (list ? col->offsets.size() < RowsNeeded(ds, src->kind) + 1 : col->u32.size() < RowsNeeded(ds, src->kind))) {
      WarnUnbound(f, col ? "column of the wrong type or size" : "no such column");
      return r;
    }
    r.values = col->u32.data();
    r.offsets = list ? col->offsets.data() : nullptr;
    r.row_of = features_internal::RowOf(ds, src->kind);
  }
  r.ok = true;
  return r;
}

ResolvedText ResolveText(const Dataset& ds, const FieldSpec& f) {
  ResolvedText r;
  r.width = static_cast<size_t>(std::max(0, f.width));
  auto src = features_internal::ParseSource(f.source);
  const Column* col = src && features_internal::SourceFitsKind(src->kind, FieldKind::kText)
                          ? FindColumn(ds, src->kind, src->column)
                          : nullptr;
  if (!col || col->type != ColumnType::kSparseVector || col->offsets.size() < RowsNeeded(ds, src->kind) + 1) {
    WarnUnbound(f, "no sparse_vector column of that name");
    return r;
  }
  r.row_of = features_internal::RowOf(ds, src->kind);
  r.offsets = col->offsets.data();
  r.index = col->u32.data();
  r.value = col->f32.data();
  r.ok = true;
  return r;
}

ResolvedSpec Resolve(const Dataset& ds, const FeatureSpec& spec, const SampleSet& samples) {
  ResolvedSpec r;
  for (const FieldSpec& f : spec.fields) {
    switch (f.kind) {
      case FieldKind::kCategorical:
      case FieldKind::kMultiHot:
      case FieldKind::kSequence:
        r.sparse.push_back(ResolveSparse(ds, f, samples));
        break;
      case FieldKind::kDense: {
        ResolvedDense d;
        auto reader = features_internal::ResolveDense(ds, f, &samples);
        if (reader.ok()) {
          d.ok = true;
          d.reader = *reader;
        } else {
          WarnUnbound(f, reader.status().message());
        }
        if (f.normalize == "log1p") {
          d.normalize = Normalize::kLog1p;
        } else if (f.normalize == "standard") {
          d.normalize = Normalize::kStandard;
          if (f.mean.empty()) {
            WarnOnce("build-batch-unfitted:" + f.name, "BuildBatch: dense field '" + f.name +
                                                           "' is standard-normalised but not fitted "
                                                           "(FeatureSpec::FitNormalization); it reads raw values");
          } else {
            d.mean = f.mean[0];
            d.inv_std = 1.f / std::max(kMinStddev, f.stddev[0]);
          }
        }
        r.dense.push_back(d);
        r.dense_width += static_cast<size_t>(f.width);
        break;
      }
      case FieldKind::kText:
        r.text.push_back(ResolveText(ds, f));
        break;
    }
  }
  return r;
}

float Normalized(const ResolvedDense& d, float x) {
  if (d.normalize == Normalize::kLog1p) return std::copysign(std::log1p(std::fabs(x)), x);
  if (d.normalize == Normalize::kStandard) return (x - d.mean) * d.inv_std;
  return x;
}

// Counters prefetch the columns of the sample this many ahead (random accesses, ~100 ns each).
constexpr size_t kCounterPrefetch = 8;

// 1970-01-01 was a Thursday; weekday 0 is Sunday.
constexpr uint32_t kEpochWeekday = 4;

// One loop per source, so the per-sample body is a load and a store (no switch inside).
void FillCategorical(const Dataset& ds, const ResolvedSparse& r, const SampleSet& samples,
                     std::span<const uint64_t> order, int64_t* ids) {
  const EventColumns& ev = ds.events;
  const uint64_t* events = samples.events.data();
  const size_t n = order.size();
  auto fill = [&](auto value_of) {
    for (size_t b = 0; b < n; ++b) ids[b] = value_of(events[order[b]]);
  };
  switch (r.source) {
    case SourceKind::kUser: fill([&](uint64_t e) -> int64_t { return ev.user[e]; }); break;
    case SourceKind::kItem: fill([&](uint64_t e) -> int64_t { return ev.item[e]; }); break;
    case SourceKind::kScene: fill([&](uint64_t e) -> int64_t { return ev.scene[e]; }); break;
    case SourceKind::kPosition: fill([&](uint64_t e) -> int64_t { return ev.position[e]; }); break;
    case SourceKind::kHour: fill([&](uint64_t e) -> int64_t { return (ev.time[e] / 3600u) % 24u; }); break;
    case SourceKind::kWeekday:
      fill([&](uint64_t e) -> int64_t { return (ev.time[e] / 86400u + kEpochWeekday) % 7u; });
      break;
    default:
      if (r.row_of) fill([&](uint64_t e) -> int64_t { return r.values[r.row_of[e]]; });
      else fill([&](uint64_t e) -> int64_t { return r.values[e]; });
      break;
  }
}

void FillSparse(const Dataset& ds, const ResolvedSparse& r, const SampleSet& samples,
                std::span<const uint64_t> order, SparseFieldBatch* out) {
  const size_t n = order.size();
  out->offsets.resize(n + 1);
  out->ids.clear();
  if (!r.ok) {
    std::fill(out->offsets.begin(), out->offsets.end(), 0);
    if (r.kind == FieldKind::kCategorical) {  // one value per sample: row 0 (unknown)
      out->ids.assign(n, 0);
      for (size_t b = 0; b <= n; ++b) out->offsets[b] = static_cast<int64_t>(b);
    }
    return;
  }
  const EventColumns& ev = ds.events;
  switch (r.kind) {
    case FieldKind::kCategorical:
      out->ids.resize(n);
      FillCategorical(ds, r, samples, order, out->ids.data());
      std::iota(out->offsets.begin(), out->offsets.end(), int64_t{0});
      break;
    case FieldKind::kMultiHot:
      for (size_t b = 0; b < n; ++b) {
        const uint64_t e = samples.events[order[b]];
        const uint64_t row = r.row_of ? r.row_of[e] : e;
        out->offsets[b] = static_cast<int64_t>(out->ids.size());
        uint64_t lb = r.offsets[row], le = r.offsets[row + 1];
        if (r.max_len && le - lb > r.max_len) le = lb + r.max_len;  // lists keep their first values
        out->ids.insert(out->ids.end(), r.values + lb, r.values + le);
      }
      out->offsets[n] = static_cast<int64_t>(out->ids.size());
      break;
    case FieldKind::kSequence: {
      // history.item reads the item ID, history.<col> that column of the item.
      const uint32_t* item_values = r.source == SourceKind::kHistoryColumn ? r.values : nullptr;
      auto value_of = [&](uint64_t j) -> int64_t {
        const uint32_t item = ev.item[j];
        return item_values ? item_values[item] : item;
      };
      if (r.max_len) out->ids.reserve(n * r.max_len);  // the whole batch's histories fit without regrowing
      for (size_t b = 0; b < n; ++b) {
        const uint64_t e = samples.events[order[b]];
        const uint32_t u = ev.user[e];
        out->offsets[b] = static_cast<int64_t>(out->ids.size());
        if (r.history) {
          // Events of the mask strictly before e in u's slice: everything below e's position.
          const uint64_t* hb = r.history->events.data() + r.history->user_offsets[u];
          const uint64_t* he = r.history->events.data() + r.history->user_offsets[u + 1];
          const uint64_t* end = std::lower_bound(hb, he, e);
          const uint64_t* begin = r.max_len && static_cast<uint64_t>(end - hb) > r.max_len ? end - r.max_len : hb;
          if (r.max_age_s) {
            // The slice is time-sorted: the events young enough are a suffix of [begin, end).
            const uint32_t t = ev.time[e];
            begin = std::partition_point(begin, end, [&](uint64_t j) {
              return features_internal::AgeOf(t, ev.time[j]) > r.max_age_s;
            });
          }
          for (const uint64_t* p = begin; p < end; ++p) out->ids.push_back(value_of(*p));
        } else {
          const size_t start = out->ids.size();
          const uint64_t first = ds.user_offsets[u];
          uint32_t kept = 0;
          const uint32_t t = ev.time[e];
          for (uint64_t j = e; j-- > first && (r.max_len == 0 || kept < r.max_len);) {
            if (r.max_age_s && features_internal::AgeOf(t, ev.time[j]) > r.max_age_s) break;
            if ((r.history_mask >> ev.action[j]) & 1u) {
              out->ids.push_back(value_of(j));
              ++kept;
            }
          }
          std::reverse(out->ids.begin() + static_cast<ptrdiff_t>(start), out->ids.end());  // newest last
        }
      }
      out->offsets[n] = static_cast<int64_t>(out->ids.size());
      break;
    }
    default:
      break;
  }
}

}  // namespace

void BuildBatch(const Dataset& ds, const FeatureSpec& spec, const SampleSet& samples,
                std::span<const uint64_t> order, Batch* out) {
  const ResolvedSpec r = Resolve(ds, spec, samples);
  const size_t n = order.size();
  const size_t num_targets = spec.targets.size();
  const EventColumns& ev = ds.events;
  out->size = n;
  out->event.resize(n);
  out->user.resize(n);
  out->scene.resize(n);
  out->truth.resize(ds.has_truth() ? n : 0);
  out->labels.resize(n * num_targets);
  out->mask.resize(n * num_targets);
  const bool labelled = samples.labels.size() == samples.size() * num_targets &&
                        samples.mask.size() == samples.labels.size();
  if (!labelled) {
    WarnOnce("build-batch-labels", "BuildBatch: the sample set's labels do not match the spec's targets "
                                   "(made with another spec?); labels and masks read 0");
  }
  for (size_t b = 0; b < n; ++b) {
    const uint64_t s = order[b];
    const uint64_t e = samples.events[s];
    out->event[b] = e;
    out->user[b] = ev.user[e];
    out->scene[b] = ev.scene[e];
    if (!out->truth.empty()) out->truth[b] = ev.truth[e];
    if (labelled) {
      std::copy_n(samples.labels.data() + s * num_targets, num_targets, out->labels.data() + b * num_targets);
      std::copy_n(samples.mask.data() + s * num_targets, num_targets, out->mask.data() + b * num_targets);
    }
  }
  if (!labelled) {
    std::fill(out->labels.begin(), out->labels.end(), 0.f);
    std::fill(out->mask.begin(), out->mask.end(), 0.f);
  }

  out->sparse.resize(r.sparse.size());
  for (size_t k = 0; k < r.sparse.size(); ++k) FillSparse(ds, r.sparse[k], samples, order, &out->sparse[k]);

  const size_t width = r.dense_width;
  out->dense.resize(n * width);
  std::vector<size_t> counters;  // dense fields k that are counters: filled sample by sample below
  for (size_t k = 0; k < r.dense.size(); ++k) {
    const ResolvedDense& d = r.dense[k];
    float* col = out->dense.data() + k;  // dense fields are scalar: field k is column k
    if (d.ok && d.reader.is_counter) {
      counters.push_back(k);
      continue;
    }
    for (size_t b = 0; b < n; ++b) {
      const uint64_t e = samples.events[order[b]];
      col[b * width] = d.ok && !d.reader.IsMissing(e) ? Normalized(d, d.reader.Raw(e)) : 0.f;
    }
  }
  // Counters walk the sample user's recent events: all of a sample's counters in a row find
  // that slice (and its index entries) in cache after the first.
  for (size_t b = 0; b < n && !counters.empty(); ++b) {
    if (b + kCounterPrefetch < n) {  // samples are in random order: start the loads a few early
      const uint64_t ahead = samples.events[order[b + kCounterPrefetch]];
      __builtin_prefetch(ev.time.data() + ahead);
      __builtin_prefetch(ev.action.data() + ahead);
      __builtin_prefetch(ev.item.data() + ahead);
      __builtin_prefetch(ev.user.data() + ahead);
    }
    const uint64_t e = samples.events[order[b]];
    float* row = out->dense.data() + b * width;
    for (size_t k : counters) row[k] = Normalized(r.dense[k], r.dense[k].reader.counter.Count(e));
  }

  out->text.resize(r.text.size());
  for (size_t k = 0; k < r.text.size(); ++k) {
    const ResolvedText& t = r.text[k];
    std::vector<float>& dst = out->text[k];
    dst.assign(n * t.width, 0.f);
    if (!t.ok) continue;
    for (size_t b = 0; b < n; ++b) {
      const uint64_t e = samples.events[order[b]];
      const uint64_t row = t.row_of ? t.row_of[e] : e;
      float* line = dst.data() + b * t.width;
      for (uint64_t p = t.offsets[row]; p < t.offsets[row + 1]; ++p) {
        if (t.index[p] < t.width) line[t.index[p]] = t.value[p];  // past the bound width: unseen at Bind
      }
    }
  }
}

void BuildItemBatch(const Dataset& ds, const FeatureSpec& spec, std::span<const uint32_t> items, Batch* out) {
  const SampleSet no_samples;
  const ResolvedSpec r = Resolve(ds, spec, no_samples);
  const size_t n = items.size();
  const uint32_t* item_rows = ds.events.item.data();  // RowOf an item column: the event's item
  out->Clear();
  out->size = n;
  out->labels.assign(n * spec.targets.size(), 0.f);
  out->mask.assign(n * spec.targets.size(), 0.f);
  out->event.assign(n, 0);
  out->user.assign(n, 0);
  out->scene.assign(n, 0);  // no request: the first scene
  out->sparse.resize(r.sparse.size());
  const std::vector<uint64_t> none(n, 0);
  for (size_t k = 0; k < r.sparse.size(); ++k) {
    const ResolvedSparse& f = r.sparse[k];
    SparseFieldBatch& dst = out->sparse[k];
    const bool item_side = f.ok && (f.source == SourceKind::kItem || f.source == SourceKind::kItemColumn);
    if (!item_side) {  // as an unbound field reads: categorical row 0, lists empty
      ResolvedSparse empty = f;
      empty.ok = false;
      FillSparse(ds, empty, no_samples, none, &dst);
      continue;
    }
    dst.offsets.resize(n + 1);
    dst.ids.clear();
    for (size_t b = 0; b < n; ++b) {
      const uint32_t item = items[b];
      dst.offsets[b] = static_cast<int64_t>(dst.ids.size());
      if (f.source == SourceKind::kItem) {
        dst.ids.push_back(item);
      } else if (f.kind == FieldKind::kMultiHot) {
        uint64_t lb = f.offsets[item], le = f.offsets[item + 1];
        if (f.max_len && le - lb > f.max_len) le = lb + f.max_len;
        dst.ids.insert(dst.ids.end(), f.values + lb, f.values + le);
      } else {
        dst.ids.push_back(f.values[item]);
      }
    }
    dst.offsets[n] = static_cast<int64_t>(dst.ids.size());
  }
  const size_t width = r.dense_width;
  out->dense.assign(n * width, 0.f);
  for (size_t k = 0; k < r.dense.size(); ++k) {
    const ResolvedDense& d = r.dense[k];
    if (!d.ok || d.reader.is_counter || !item_rows || d.reader.row_of != item_rows) continue;  // not the item's own
    for (size_t b = 0; b < n; ++b) {
      const uint32_t item = items[b];
      const float raw = d.reader.f32 ? d.reader.f32[item] : static_cast<float>(d.reader.u32[item]);
      out->dense[b * width + k] = Normalized(d, raw);
    }
  }
  out->text.resize(r.text.size());
  for (size_t k = 0; k < r.text.size(); ++k) {
    const ResolvedText& t = r.text[k];
    out->text[k].assign(n * t.width, 0.f);
    if (!t.ok || !item_rows || t.row_of != item_rows) continue;
    for (size_t b = 0; b < n; ++b) {
      float* line = out->text[k].data() + b * t.width;
      for (uint64_t p = t.offsets[items[b]]; p < t.offsets[items[b] + 1]; ++p) {
        if (t.index[p] < t.width) line[t.index[p]] = t.value[p];
      }
    }
  }
}

void AppendBatch(const Batch& src, Batch* dst) {
  if (dst->size == 0 && dst->sparse.empty() && dst->text.empty()) {
    *dst = src;
    return;
  }
  for (size_t k = 0; k < src.sparse.size() && k < dst->sparse.size(); ++k) {
    SparseFieldBatch& d = dst->sparse[k];
    const SparseFieldBatch& s = src.sparse[k];
    const int64_t base = d.offsets.empty() ? 0 : d.offsets.back();
    if (!d.offsets.empty()) d.offsets.pop_back();
    for (int64_t o : s.offsets) d.offsets.push_back(base + o);
    d.ids.insert(d.ids.end(), s.ids.begin(), s.ids.end());
  }
  dst->dense.insert(dst->dense.end(), src.dense.begin(), src.dense.end());
  for (size_t k = 0; k < src.text.size() && k < dst->text.size(); ++k) {
    dst->text[k].insert(dst->text[k].end(), src.text[k].begin(), src.text[k].end());
  }
  auto append = [](auto& d, const auto& s) { d.insert(d.end(), s.begin(), s.end()); };
  append(dst->labels, src.labels);
  append(dst->mask, src.mask);
  append(dst->event, src.event);
  append(dst->user, src.user);
  append(dst->scene, src.scene);
  if (!dst->truth.empty()) {  // rows without ground truth (item rows) read 0
    if (src.truth.size() == src.size) append(dst->truth, src.truth);
    else dst->truth.resize(dst->truth.size() + src.size, 0.f);
  }
  dst->size += src.size;
}

}  // namespace adrec::data
