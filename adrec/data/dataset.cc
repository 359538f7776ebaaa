#include "adrec/data/dataset.h"

#include <algorithm>
#include <functional>
#include <cassert>
#include <numeric>

#include "adrec/core/hash.h"
#include "adrec/core/thread_pool.h"

namespace adrec::data {

namespace {
constexpr std::string_view kActionNames[kNumActions] = {
    "impression", "click", "download", "install", "conversion", "rating",
    "purchase",   "view",  "like",     "add_to_cart", "share"};
}  // namespace

std::string_view ActionName(Action a) {
  auto i = static_cast<size_t>(a);
  return i < kNumActions ? kActionNames[i] : "unknown";
}

StatusOr<Action> ParseAction(std::string_view name) {
  for (int i = 0; i < kNumActions; ++i) {
    if (name == kActionNames[i] || name == std::to_string(i)) return static_cast<Action>(i);
  }
  std::string m = "unknown action '" + std::string(name) + "' (known:";
  for (auto n : kActionNames) m += " " + std::string(n);
  return InvalidArgumentError(m + ")");
}

std::string_view ColumnTypeName(ColumnType t) {
  switch (t) {
    case ColumnType::kCategorical: return "categorical";
    case ColumnType::kUInt32: return "u32";
    case ColumnType::kFloat32: return "f32";
    case ColumnType::kString: return "string";
    case ColumnType::kCategoricalList: return "categorical_list";
    case ColumnType::kSparseVector: return "sparse_vector";
  }
  return "unknown";
}

size_t Vocabulary::Hash::operator()(std::string_view s) const { return Hash64(s); }

uint32_t Vocabulary::GetOrAdd(std::string_view key) {
  auto it = index_.find(key);
  if (it != index_.end()) return it->second;
  auto id = static_cast<uint32_t>(names_.size());
  names_.emplace_back(key);
  index_.emplace(names_.back(), id);
  return id;
}

std::optional<uint32_t> Vocabulary::Find(std::string_view key) const {
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

void Vocabulary::Reserve(size_t n) {
  names_.reserve(n);
  index_.reserve(n);
}

StatusOr<Vocabulary> Vocabulary::FromNames(std::vector<std::string> names) {
  // One hash per name and no copy of the names: dataset loading spends its time here.
  Vocabulary v;
  v.names_ = std::move(names);
  v.index_.reserve(v.names_.size());
  for (size_t i = 0; i < v.names_.size(); ++i) {
    if (!v.index_.emplace(v.names_[i], static_cast<uint32_t>(i)).second) {
      return DataLossError("vocabulary has a duplicate entry '" + v.names_[i] + "'");
    }
  }
  return v;
}

size_t Vocabulary::MemoryBytes() const {
  size_t b = names_.capacity() * sizeof(std::string) + index_.bucket_count() * sizeof(void*) +
             index_.size() * (sizeof(std::string) + sizeof(uint32_t) + 2 * sizeof(void*));
  for (const auto& n : names_) b += n.capacity() > 15 ? 2 * (n.capacity() + 1) : 0;  // name + key copy
  return b;
}

Column MakeColumn(std::string name, ColumnType type) {
  Column c;
  c.name = std::move(name);
  c.type = type;
  if (type == ColumnType::kCategorical || type == ColumnType::kCategoricalList) {
    c.vocab = std::make_shared<Vocabulary>();
    c.vocab->GetOrAdd("");  // code 0 = missing
  }
  if (type == ColumnType::kCategoricalList || type == ColumnType::kSparseVector) c.offsets.push_back(0);
  return c;
}

size_t Column::rows() const {
  switch (type) {
    case ColumnType::kCategorical:
    case ColumnType::kUInt32: return u32.size();
    case ColumnType::kFloat32: return f32.size();
    case ColumnType::kString: return str.size();
    case ColumnType::kCategoricalList:
    case ColumnType::kSparseVector: return offsets.empty() ? 0 : offsets.size() - 1;
  }
  return 0;
}

void Column::PushCategorical(std::string_view value) {
  assert(type == ColumnType::kCategorical);
  u32.push_back(vocab->GetOrAdd(value));
}
void Column::PushU32(uint32_t v) {
  assert(type == ColumnType::kUInt32 || type == ColumnType::kCategorical);
  u32.push_back(v);
}
void Column::PushFloat(float v) {
  assert(type == ColumnType::kFloat32);
  f32.push_back(v);
}
void Column::PushString(std::string v) {
  assert(type == ColumnType::kString);
  str.push_back(std::move(v));
}
void Column::PushCategoricalList(std::span<const std::string_view> values) {
  assert(type == ColumnType::kCategoricalList);
  for (auto v : values) u32.push_back(vocab->GetOrAdd(v));
  offsets.push_back(u32.size());
}
void Column::PushSparse(std::span<const uint32_t> idx, std::span<const float> val) {
  assert(type == ColumnType::kSparseVector && idx.size() == val.size());
  u32.insert(u32.end(), idx.begin(), idx.end());
  f32.insert(f32.end(), val.begin(), val.end());
  offsets.push_back(u32.size());
}
void Column::PushDefault() {
  switch (type) {
    case ColumnType::kCategorical:
    case ColumnType::kUInt32: u32.push_back(0); break;
    case ColumnType::kFloat32: f32.push_back(0.f); break;
    case ColumnType::kString: str.emplace_back(); break;
    case ColumnType::kCategoricalList:
    case ColumnType::kSparseVector: offsets.push_back(u32.size()); break;
  }
}

Column* Table::Find(std::string_view name) {
  for (auto& c : columns) if (c.name == name) return &c;
  return nullptr;
}
const Column* Table::Find(std::string_view name) const {
  for (const auto& c : columns) if (c.name == name) return &c;
  return nullptr;
}
Column& Table::Add(std::string name, ColumnType type, size_t rows) {
  columns.push_back(MakeColumn(std::move(name), type));
  for (size_t i = 0; i < rows; ++i) columns.back().PushDefault();
  return columns.back();
}

void PadTable(Table& t, size_t rows) {
  for (auto& c : t.columns) {
    while (c.rows() < rows) c.PushDefault();
  }
}

uint32_t Taxonomy::Add(uint32_t parent, std::string name_en, std::string name_zh) {
  if (nodes.empty()) nodes.push_back(TaxonomyNode{0, 0, "root", "根"});
  TaxonomyNode n;
  n.parent = parent;
  n.level = static_cast<uint8_t>(nodes[parent].level + 1);
  n.name_en = std::move(name_en);
  n.name_zh = std::move(name_zh);
  nodes.push_back(std::move(n));
  return static_cast<uint32_t>(nodes.size() - 1);
}

std::string Taxonomy::Path(uint32_t node) const {
  if (node == 0 || node >= nodes.size()) return "";
  std::vector<uint32_t> chain;
  for (uint32_t n = node; n != 0; n = nodes[n].parent) chain.push_back(n);
  std::string out;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    if (!out.empty()) out += " › ";
    out += nodes[*it].name_en;
  }
  return out;
}

std::vector<uint32_t> Taxonomy::Children(uint32_t node) const {
  std::vector<uint32_t> out;
  for (uint32_t i = 1; i < nodes.size(); ++i) if (nodes[i].parent == node) out.push_back(i);
  return out;
}

void EventColumns::Reserve(size_t n, bool with_truth) {
  user.reserve(n); item.reserve(n); time.reserve(n); scene.reserve(n);
  position.reserve(n); action.reserve(n); value.reserve(n);
  if (with_truth) truth.reserve(n);
}

size_t EventColumns::MemoryBytes() const {
  return user.capacity() * 4 + item.capacity() * 4 + time.capacity() * 4 + scene.capacity() +
         position.capacity() + action.capacity() + value.capacity() * 4 + truth.capacity() * 4;
}

namespace {
// Runs check(begin, end) over `chunks` contiguous pieces of [0, n), on the pool when there is
// one, and returns the first failure in index order, so the message does not depend on timing.
Status FirstFailure(ThreadPool* pool, size_t n, const std::function<Status(size_t, size_t)>& check) {
  const size_t chunks = pool ? std::min<size_t>(n, pool->size() * 4) : 1;
  if (chunks <= 1) return check(0, n);
  std::vector<Status> results(chunks);
  const size_t step = (n + chunks - 1) / chunks;
  pool->ParallelFor(chunks, [&](size_t b, size_t e) {
    for (size_t c = b; c < e; ++c) results[c] = check(std::min(n, c * step), std::min(n, (c + 1) * step));
  });
  for (auto& r : results) if (!r.ok()) return r;
  return Status::Ok();
}
}  // namespace

Status Dataset::Validate(ThreadPool* pool) const {
  const size_t n = events.size();
  auto bad = [](std::string m) { return DataLossError("dataset invariant broken: " + m); };
  if (events.item.size() != n || events.time.size() != n || events.scene.size() != n ||
      events.position.size() != n || events.action.size() != n || events.value.size() != n ||
      events.user.size() != n) {
    return bad("event columns have different lengths");
  }
  if (!events.truth.empty() && events.truth.size() != n) return bad("truth column length differs from events");
  if (user_offsets.size() != static_cast<size_t>(num_users()) + 1) return bad("user offset index size != users + 1");
  if (user_offsets.front() != 0 || user_offsets.back() != n) return bad("user offset index does not span events");
  if (scenes.empty()) return bad("no scenes");
  for (uint32_t u = 0; u < num_users(); ++u) {
    // e ≤ n too: a later decrease must not let this slice run past the events.
    if (user_offsets[u] > user_offsets[u + 1] || user_offsets[u + 1] > n) {
      return bad("user offset index is not monotone within the events at user " + std::to_string(u));
    }
  }
  ADREC_RETURN_IF_ERROR(FirstFailure(pool, num_users(), [&](size_t ub, size_t ue) -> Status {
    for (size_t u = ub; u < ue; ++u) {
      const uint64_t b = user_offsets[u], e = user_offsets[u + 1];
      for (uint64_t i = b; i < e; ++i) {
        if (events.user[i] != u) return bad("event " + std::to_string(i) + " is not in its user's slice");
        if (i > b && events.time[i] < events.time[i - 1]) {
          return bad("events of user " + std::to_string(u) + " are not sorted by time");
        }
      }
    }
    return Status::Ok();
  }));
  ADREC_RETURN_IF_ERROR(FirstFailure(pool, n, [&](size_t b, size_t e) -> Status {
    for (size_t i = b; i < e; ++i) {
      if (events.item[i] >= num_items()) return bad("event " + std::to_string(i) + " has item ID out of range");
      if (events.scene[i] >= scenes.size()) return bad("event " + std::to_string(i) + " has scene out of range");
      if (events.action[i] >= kNumActions) return bad("event " + std::to_string(i) + " has unknown action");
    }
    return Status::Ok();
  }));
  auto check_table = [&](const Table& t, size_t rows, std::string_view what) -> Status {
    for (const auto& c : t.columns) {
      if (c.rows() != rows) {
        return bad(std::string(what) + " column '" + c.name + "' has " + std::to_string(c.rows()) + " rows, want " +
                   std::to_string(rows));
      }
      bool list = c.type == ColumnType::kCategoricalList || c.type == ColumnType::kSparseVector;
      if (list) {
        if (c.offsets.empty() || c.offsets.front() != 0) {
          return bad(std::string(what) + " column '" + c.name + "' offsets do not start at 0");
        }
        for (size_t r = 0; r < rows; ++r) {
          if (c.offsets[r] > c.offsets[r + 1]) return bad(std::string(what) + " column '" + c.name + "' offsets decrease");
        }
        if (c.offsets.back() != c.u32.size()) return bad(std::string(what) + " column '" + c.name + "' offsets overrun");
        if (c.type == ColumnType::kSparseVector && c.f32.size() != c.u32.size()) {
          return bad(std::string(what) + " column '" + c.name + "' index/value lengths differ");
        }
      }
      if (c.type == ColumnType::kCategorical || c.type == ColumnType::kCategoricalList) {
        if (!c.vocab) return bad(std::string(what) + " column '" + c.name + "' has no vocabulary");
        for (uint32_t code : c.u32) {
          if (code >= c.vocab->size()) return bad(std::string(what) + " column '" + c.name + "' code out of range");
        }
      }
    }
    return Status::Ok();
  };
  ADREC_RETURN_IF_ERROR(check_table(user_table, num_users(), "user"));
  ADREC_RETURN_IF_ERROR(check_table(item_table, num_items(), "item"));
  if (!event_table.columns.empty()) ADREC_RETURN_IF_ERROR(check_table(event_table, n, "event"));
  for (size_t i = 1; i < taxonomy.nodes.size(); ++i) {
    if (taxonomy.nodes[i].parent >= i) return bad("taxonomy node " + std::to_string(i) + " has a later parent");
  }
  return Status::Ok();
}

DatasetBuilder::DatasetBuilder(DatasetBuilderOptions options) : with_truth_(options.with_truth) {
  ds_.info.name = std::move(options.name);
  ds_.info.source_format = std::move(options.source_format);
  ds_.info.provenance = std::move(options.provenance);
}

uint8_t DatasetBuilder::SceneId(std::string_view name) {
  for (size_t i = 0; i < ds_.scenes.size(); ++i) if (ds_.scenes[i] == name) return static_cast<uint8_t>(i);
  assert(ds_.scenes.size() < 256);
  ds_.scenes.emplace_back(name);
  return static_cast<uint8_t>(ds_.scenes.size() - 1);
}

Status DatasetBuilder::AddEvent(const Event& e) {
  if (e.timestamp < 0 || e.timestamp > static_cast<int64_t>(UINT32_MAX)) {
    return OutOfRangeError("timestamp " + std::to_string(e.timestamp) + " outside [0, 2^32) unix seconds");
  }
  auto& ev = ds_.events;
  ev.user.push_back(e.user);
  ev.item.push_back(e.item);
  ev.time.push_back(static_cast<uint32_t>(e.timestamp));
  ev.scene.push_back(e.scene);
  ev.position.push_back(e.position);
  ev.action.push_back(static_cast<uint8_t>(e.action));
  ev.value.push_back(e.value);
  if (with_truth_) ev.truth.push_back(e.truth);
  return Status::Ok();
}

namespace {
template <typename T>
void Permute(std::vector<T>& v, const std::vector<uint32_t>& perm) {
  if (v.empty()) return;
  std::vector<T> out(v.size());
  for (size_t i = 0; i < perm.size(); ++i) out[i] = v[perm[i]];
  v.swap(out);
}

void PermuteColumn(Column& c, const std::vector<uint32_t>& perm) {
  bool list = c.type == ColumnType::kCategoricalList || c.type == ColumnType::kSparseVector;
  if (!list) {
    Permute(c.u32, perm);
    Permute(c.f32, perm);
    Permute(c.str, perm);
    return;
  }
  std::vector<uint64_t> offsets{0};
  std::vector<uint32_t> u32;
  std::vector<float> f32;
  offsets.reserve(c.offsets.size());
  u32.reserve(c.u32.size());
  f32.reserve(c.f32.size());
  for (uint32_t src : perm) {
    for (uint64_t k = c.offsets[src]; k < c.offsets[src + 1]; ++k) {
      u32.push_back(c.u32[k]);
      if (!c.f32.empty()) f32.push_back(c.f32[k]);
    }
    offsets.push_back(u32.size());
  }
  c.offsets.swap(offsets);
  c.u32.swap(u32);
  c.f32.swap(f32);
}
}  // namespace

StatusOr<Dataset> DatasetBuilder::Finish() && {
  auto& ev = ds_.events;
  const size_t n = ev.size();
  if (n == 0) return InvalidArgumentError("no events: the input is empty or every row was invalid");
  if (n > UINT32_MAX) return ResourceExhaustedError("more than 2^32 events in one dataset");
  if (ds_.scenes.empty()) ds_.scenes.emplace_back("default");
  if (!ds_.event_table.columns.empty() && ds_.event_table.rows() != n) {
    return InternalError("event table has " + std::to_string(ds_.event_table.rows()) + " rows for " +
                         std::to_string(n) + " events");
  }
  bool sorted = true;
  for (size_t i = 1; i < n && sorted; ++i) {
    sorted = ev.user[i - 1] < ev.user[i] || (ev.user[i - 1] == ev.user[i] && ev.time[i - 1] <= ev.time[i]);
  }
  if (!sorted) {
    std::vector<uint32_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0u);
    std::stable_sort(perm.begin(), perm.end(), [&](uint32_t a, uint32_t b) {
      return ev.user[a] != ev.user[b] ? ev.user[a] < ev.user[b] : ev.time[a] < ev.time[b];
    });
    Permute(ev.user, perm); Permute(ev.item, perm); Permute(ev.time, perm); Permute(ev.scene, perm);
    Permute(ev.position, perm); Permute(ev.action, perm); Permute(ev.value, perm); Permute(ev.truth, perm);
    for (auto& c : ds_.event_table.columns) PermuteColumn(c, perm);
  }
  // Generators that bypass UserId() could hand out IDs past the vocabulary.
  for (size_t i = 0; i < n; ++i) {
    if (ev.user[i] >= ds_.num_users()) {
      return InvalidArgumentError("event " + std::to_string(i) + " has user ID " + std::to_string(ev.user[i]) +
                                  " but only " + std::to_string(ds_.num_users()) + " users exist");
    }
  }
  ds_.user_offsets.assign(static_cast<size_t>(ds_.num_users()) + 1, 0);
  for (uint32_t u : ev.user) ds_.user_offsets[u + 1]++;
  for (size_t u = 0; u < ds_.num_users(); ++u) ds_.user_offsets[u + 1] += ds_.user_offsets[u];
  PadTable(ds_.user_table, ds_.num_users());
  PadTable(ds_.item_table, ds_.num_items());
  ADREC_RETURN_IF_ERROR(ds_.Validate());
  return std::move(ds_);
}

}  // namespace adrec::data
