// How a field's source is parsed and read (features_internal.h).
#include "adrec/data/features_internal.h"

namespace adrec::data::features_internal {

std::optional<ParsedSource> ParseSource(std::string_view s) {
  static constexpr std::pair<std::string_view, SourceKind> kPlain[] = {
      {"user", SourceKind::kUser},         {"item", SourceKind::kItem}, {"scene", SourceKind::kScene},
      {"position", SourceKind::kPosition}, {"hour", SourceKind::kHour}, {"weekday", SourceKind::kWeekday}};
  for (const auto& [name, kind] : kPlain) {
    if (s == name) return ParsedSource{kind, {}};
  }
  const size_t dot = s.find('.');
  if (dot == std::string_view::npos || dot + 1 == s.size()) return std::nullopt;
  const std::string_view table = s.substr(0, dot), column = s.substr(dot + 1);
  if (table == "user") return ParsedSource{SourceKind::kUserColumn, column};
  if (table == "item") return ParsedSource{SourceKind::kItemColumn, column};
  if (table == "event") return ParsedSource{SourceKind::kEventColumn, column};
  if (table == "history") {
    return column == "item" ? ParsedSource{SourceKind::kHistoryItem, {}} : ParsedSource{SourceKind::kHistoryColumn, column};
  }
  if (table == "recent") return ParsedSource{SourceKind::kRecent, column};
  return std::nullopt;
}

bool SourceFitsKind(SourceKind s, FieldKind k) {
  const bool history = s == SourceKind::kHistoryItem || s == SourceKind::kHistoryColumn;
  const bool column = s == SourceKind::kUserColumn || s == SourceKind::kItemColumn || s == SourceKind::kEventColumn;
  switch (k) {
    case FieldKind::kCategorical: return !history && s != SourceKind::kRecent;
    case FieldKind::kMultiHot: return column;
    case FieldKind::kDense: return column || s == SourceKind::kRecent;
    case FieldKind::kSequence: return history;
    case FieldKind::kText: return s == SourceKind::kUserColumn || s == SourceKind::kItemColumn;
  }
  return false;
}

ActionMask HistoryMask(const FieldSpec& f, ActionMask fallback) {
  if (f.history_actions.empty()) return fallback ? fallback : kNonImpressionActions;
  ActionMask m = 0;
  for (Action a : f.history_actions) m |= ActionBit(a);
  return m;
}

// Where a user/item/event column's row comes from: the sample event's user, its item, or the
// event itself (row_of == nullptr).
const uint32_t* RowOf(const Dataset& ds, SourceKind k) {
  if (k == SourceKind::kUserColumn) return ds.events.user.data();
  if (k == SourceKind::kItemColumn) return ds.events.item.data();
  return nullptr;
}

// The item column a counter matches on, checked (Bind reports the same problems with context).
StatusOr<const Column*> MatchColumn(const Dataset& ds, std::string_view match) {
  const Column* col = ds.item_table.Find(match);
  if (!col) return InvalidArgumentError("the item table has no column '" + std::string(match) + "'");
  if ((col->type != ColumnType::kCategorical && col->type != ColumnType::kUInt32) || col->u32.size() < ds.num_items()) {
    return InvalidArgumentError("match column '" + std::string(match) + "' is not a categorical or u32 column of " +
                                std::to_string(ds.num_items()) + " rows");
  }
  return col;
}

namespace {

// A counter reads its action's per-user index when the sample set has one (a one-action mask).
StatusOr<DenseReader> ResolveCounter(const Dataset& ds, const FieldSpec& f, std::string_view action_name,
                                     const SampleSet* samples) {
  auto action = ParseAction(action_name);
  if (!action.ok()) return action.status();
  if (f.window_s == 0) return InvalidArgumentError("window_s is 0");
  DenseReader r;
  r.is_counter = true;
  RecentCounter& c = r.counter;
  const EventColumns& ev = ds.events;
  c.user = ev.user.data();
  c.item = ev.item.data();
  c.time = ev.time.data();
  c.action = ev.action.data();
  c.user_offsets = ds.user_offsets.data();
  c.act = static_cast<uint8_t>(*action);
  c.window_s = f.window_s;
  c.inv_decay = f.decay_s > 0.f ? 1.0 / static_cast<double>(f.decay_s) : 0.0;
  if (f.match == "item") {
    c.match_item = true;
  } else if (!f.match.empty()) {
    auto col = MatchColumn(ds, f.match);
    if (!col.ok()) return col.status();
    c.match_values = (*col)->u32.data();
    c.zero_matches_nothing = (*col)->type == ColumnType::kCategorical;
  }
  if (samples) {
    for (const HistoryIndex& h : samples->history) {
      if (h.actions == ActionBit(*action) && h.user_offsets.size() == uint64_t{ds.num_users()} + 1) c.index = &h;
    }
  }
  return r;
}

}  // namespace

StatusOr<DenseReader> ResolveDense(const Dataset& ds, const FieldSpec& f, const SampleSet* samples) {
  auto src = ParseSource(f.source);
  if (!src || !SourceFitsKind(src->kind, FieldKind::kDense)) return InvalidArgumentError("bad source " + f.source);
  if (src->kind == SourceKind::kRecent) return ResolveCounter(ds, f, src->column, samples);
  const Table& table = src->kind == SourceKind::kUserColumn   ? ds.user_table
                       : src->kind == SourceKind::kItemColumn ? ds.item_table
                                                              : ds.event_table;
  const size_t need = src->kind == SourceKind::kUserColumn   ? ds.num_users()
                      : src->kind == SourceKind::kItemColumn ? ds.num_items()
                                                             : ds.num_events();
  const Column* col = table.Find(src->column);
  if (!col) return InvalidArgumentError("no column " + std::string(src->column));
  DenseReader r;
  r.row_of = RowOf(ds, src->kind);
  if (col->type == ColumnType::kFloat32 && col->f32.size() >= need) {
    r.f32 = col->f32.data();
  } else if (col->type == ColumnType::kUInt32 && col->u32.size() >= need) {
    r.u32 = col->u32.data();
  } else {
    return InvalidArgumentError("column " + col->name + " is not a scalar f32/u32 column of " + std::to_string(need) + " rows");
  }
  if (src->kind == SourceKind::kEventColumn && src->column.size() >= 2 && src->column[0] == 'I') {
    uint32_t k = 0;
    bool digits = true;
    for (char c : src->column.substr(1)) {
      digits = digits && c >= '0' && c <= '9';
      if (digits) k = k * 10 + static_cast<uint32_t>(c - '0');
      if (k > 32) digits = false;
    }
    const Column* mask = ds.event_table.Find(kMissingMaskColumn);
    if (digits && k >= 1 && k <= 32 && mask && mask->type == ColumnType::kUInt32 && mask->u32.size() >= need) {
      r.missing = mask->u32.data();
      r.missing_bit = k - 1;
    }
  }
  return r;
}

std::string SourceShapes(FieldKind k) {
  switch (k) {
    case FieldKind::kCategorical:
      return "user, item, scene, position, hour, weekday, user.<col>, item.<col> or event.<col>";
    case FieldKind::kMultiHot:
      return "user.<col>, item.<col> or event.<col>";
    case FieldKind::kDense:
      return "user.<col>, item.<col>, event.<col> or recent.<action>";
    case FieldKind::kSequence:
      return "history.item or history.<item col>";
    case FieldKind::kText:
      return "user.<col> or item.<col>";
  }
  return "";
}

// Fixed for sources whose values are a known small range (IDs, scene, time parts); a column's
// kind is decided by Bind (fixed when it has a vocabulary).
bool SourceHasFixedRange(SourceKind k) {
  return k == SourceKind::kUser || k == SourceKind::kItem || k == SourceKind::kScene ||
         k == SourceKind::kPosition || k == SourceKind::kHour || k == SourceKind::kWeekday ||
         k == SourceKind::kHistoryItem;
}

}  // namespace adrec::data::features_internal
