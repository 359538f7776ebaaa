// The dynamic (collision-free) table: raw ID → row through a compact open-addressing index,
// frequency admission through a count-min sketch, eviction (lfu/lru) at max_rows and TTL expiry
// (Monolith, Liu et al. 2022; TorchRec's managed-collision modules).
//
// Memory layout, per capacity row: the weight (dim × 4 B), the row's ID (8 B) and 1/0.75 index
// slots of 8 B (a 32-bit row and a 32-bit hash tag, so probes rarely touch the ID array).
// Capacity grows by 1/8 at a time, so with dim 16 the weights + index stay ≤ 1.5× the raw row
// bytes (≈ 1.45× just after a growth). Per-row eviction counters (a 4 B count, an 8 B last step)
// are bookkeeping like optimiser state and are not counted in MemoryBytes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>

#include "adrec/core/hash.h"
#include "adrec/embedding/embedding_table_internal.h"

namespace adrec::embedding {
namespace {

constexpr uint64_t kDefaultCapacity = 1024;  // rows when the spec gives no initial capacity
constexpr double kGrowth = 1.125;             // capacity growth factor (bounds the slack at 12.5%)
constexpr double kMaxLoad = 0.75;             // index slots per capacity row = 1 / kMaxLoad
// At max_rows, evict this fraction of the rows at once (at least one): the O(rows) scan for the
// coldest rows is paid once per ~1% of max_rows admissions instead of once per admission.
constexpr double kEvictFraction = 0.01;
// Expiry is checked every ttl_steps / 8 steps (at least every step), not on every lookup.
constexpr int64_t kTtlChecksPerPeriod = 8;

// Count-min sketch (Cormode & Muthukrishnan 2005) with conservative update (Estan & Varghese
// 2002) over IDs that have no row yet: bounded memory (depth × width × 2 B = 8 MiB) whatever
// the number of distinct cold IDs. It can only overestimate, so an ID is admitted no later than
// its admit_after-th occurrence (sometimes earlier under collisions). All counters halve after
// every 4 × width increments (TinyLFU's reset, Einziger et al. 2017), which keeps the error
// bounded on an endless stream: an ID must reach the threshold within a few million cold
// occurrences. Sketch counts are not checkpointed: a restored table re-counts cold IDs.
class AdmissionSketch {
 public:
  static constexpr int kDepth = 4;
  static constexpr uint64_t kWidth = uint64_t{1} << 20;

  AdmissionSketch() : counters_(kDepth * kWidth, 0) {}
  // Counts one occurrence; returns the estimated count including it.
  uint32_t Add(uint64_t hash) {
    size_t idx[kDepth];
    uint32_t est = std::numeric_limits<uint16_t>::max();
    for (int d = 0; d < kDepth; ++d) {
      // Independent-enough rows from one 64-bit hash (Kirsch & Mitzenmacher 2006 double hashing).
      const uint64_t h = (hash + static_cast<uint64_t>(d) * ((hash >> 32) | 1)) & (kWidth - 1);
      idx[d] = static_cast<size_t>(d * kWidth + h);
      est = std::min<uint32_t>(est, counters_[idx[d]]);
    }
    const uint32_t next = std::min<uint32_t>(est + 1, std::numeric_limits<uint16_t>::max());
    for (int d = 0; d < kDepth; ++d) {
      if (counters_[idx[d]] < next) counters_[idx[d]] = static_cast<uint16_t>(next);
    }
    if (++additions_ >= 4 * kWidth) {
      for (uint16_t& c : counters_) c >>= 1;
      additions_ = 0;
    }
    return next;
  }
  uint64_t bytes() const { return counters_.size() * sizeof(uint16_t); }

 private:
  std::vector<uint16_t> counters_;
  uint64_t additions_ = 0;
};

class DynamicTable final : public EmbeddingTable {
 public:
  DynamicTable(const data::TableSpec& spec, const TableOptions& options, std::unique_ptr<SparseOptimizer> optimizer)
      : EmbeddingTable(spec),
        device_(options.device),
        fused_(options.fused_cpu_optimizer),
        seed_(Hash64(spec.name)),
        gen_(TableGenerator(spec, options)),
        optimizer_(std::move(optimizer)) {
    uint64_t cap = std::max<uint64_t>(spec.rows > 0 ? spec.rows : kDefaultCapacity, 2);
    if (spec.max_rows > 0) cap = std::min(cap, spec.max_rows);
    initial_capacity_ = static_cast<int64_t>(cap);
    if (spec.admit_after > 1) sketch_ = std::make_unique<AdmissionSketch>();
    Reset(initial_capacity_);
  }

  void MapIds(std::span<const int64_t> ids, std::span<int64_t> rows, bool train, int64_t step) override {
    if (!train) {
      // Serving: read-only (safe from several threads), unseen IDs read row 0.
      for (size_t i = 0; i < ids.size(); ++i) rows[i] = Find(ids[i], HashId(static_cast<uint64_t>(ids[i]), seed_));
      return;
    }
    if (spec_.ttl_steps > 0 && step - last_ttl_check_ >= TtlCheckInterval()) {
      ExpireOlderThan(step - static_cast<int64_t>(spec_.ttl_steps));
      last_ttl_check_ = step;
    }
    pending_init_.clear();
    for (size_t i = 0; i < ids.size(); ++i) {
      const int64_t id = ids[i];
      const uint64_t hash = HashId(static_cast<uint64_t>(id), seed_);
      uint32_t row = Find(id, hash);
      if (row == 0) {
        if (sketch_ && sketch_->Add(hash) < spec_.admit_after) {
          rows[i] = 0;
          continue;
        }
        row = Allocate(step);
        if (row == 0) {  // full and every row is in use by this step's batch
          rows[i] = 0;
          continue;
        }
        Insert(hash, row);
        row_id_[row] = id;
        count_[row] = 0;
        ++used_;
        pending_init_.push_back(row);
      }
      if (count_[row] != std::numeric_limits<uint32_t>::max()) ++count_[row];
      last_step_[row] = step;
      rows[i] = row;
    }
    if (!pending_init_.empty()) InitRows(pending_init_);
  }

  torch::Tensor weight() const override { return weight_; }

  void ApplyGradient(const torch::Tensor& rows, const torch::Tensor& grad, int64_t step) override {
    optimizer_->Apply(weight_, rows, grad, fused_);
  }

  uint64_t rows_in_use() const override { return used_ + 1; }

  uint64_t MemoryBytes() const override {
    return weight_.numel() * sizeof(float) + slots_.size() * sizeof(uint64_t) + row_id_.size() * sizeof(int64_t);
  }

  std::vector<std::pair<std::string, torch::Tensor>> State(bool with_optimizer) const override {
    const int64_t n = high_water_;
    auto i64 = torch::TensorOptions().dtype(torch::kLong);
    torch::Tensor ids = torch::from_blob(const_cast<int64_t*>(row_id_.data()), {n}, i64).clone();
    torch::Tensor counts = torch::empty({n}, i64), last = torch::empty({n}, i64);
    std::memcpy(last.data_ptr<int64_t>(), last_step_.data(), n * sizeof(int64_t));
    auto* c = counts.data_ptr<int64_t>();
    for (int64_t r = 0; r < n; ++r) c[r] = count_[r];
    std::vector<std::pair<std::string, torch::Tensor>> out{
        {spec_.name + ".weight", weight_.narrow(0, 0, n)},
        {spec_.name + ".ids", ids},
        {spec_.name + ".counts", counts},
        {spec_.name + ".last_step", last},
    };
    if (with_optimizer) {
      for (auto& [name, t] : optimizer_->State(n)) out.emplace_back(spec_.name + ".opt." + name, t);
    }
    return out;
  }

  Status LoadState(const std::map<std::string, torch::Tensor>& tensors, bool with_optimizer) override {
    auto find = [&](const std::string& suffix, torch::Tensor* out) -> Status {
      const std::string name = spec_.name + suffix;
      auto it = tensors.find(name);
      if (it == tensors.end()) return InvalidArgumentError("missing tensor '" + name + "'");
      *out = it->second;
      return Status::Ok();
    };
    torch::Tensor w, ids, counts, last;
    ADREC_RETURN_IF_ERROR(find(".weight", &w));
    ADREC_RETURN_IF_ERROR(find(".ids", &ids));
    ADREC_RETURN_IF_ERROR(find(".counts", &counts));
    ADREC_RETURN_IF_ERROR(find(".last_step", &last));
    const int64_t n = w.dim() == 2 ? w.size(0) : 0;
    if (w.dim() != 2 || n < 1 || w.size(1) != spec_.dim ||
        (spec_.max_rows > 0 && static_cast<uint64_t>(n) > spec_.max_rows)) {
      return InvalidArgumentError("tensor '" + spec_.name + ".weight' has shape " + c10::str(w.sizes()) +
                                  ", expected [rows, " + std::to_string(spec_.dim) + "] with 1 <= rows" +
                                  (spec_.max_rows > 0 ? " <= " + std::to_string(spec_.max_rows) : ""));
    }
    for (auto [suffix, t] : {std::pair{".ids", ids}, std::pair{".counts", counts}, std::pair{".last_step", last}}) {
      if (t.dim() != 1 || t.size(0) != n) {
        return InvalidArgumentError("tensor '" + spec_.name + suffix + "' has shape " + c10::str(t.sizes()) +
                                    ", expected [" + std::to_string(n) + "]");
      }
    }
    ids = ids.to(torch::kCPU, torch::kLong).contiguous();
    counts = counts.to(torch::kCPU, torch::kLong).contiguous();
    last = last.to(torch::kCPU, torch::kLong).contiguous();

    // Rebuild into a fresh state, then swap, so a bad checkpoint leaves the table as it was.
    DynamicTable fresh(spec_, device_, fused_, seed_, gen_, optimizer_->options());
    fresh.Reset(std::max(n, initial_capacity_), /*init_row0=*/false);
    const int64_t* id = ids.data_ptr<int64_t>();
    for (int64_t r = 1; r < n; ++r) {
      if (id[r] == -1) {
        fresh.free_.push_back(static_cast<uint32_t>(r));
        continue;
      }
      const uint64_t hash = HashId(static_cast<uint64_t>(id[r]), seed_);
      if (fresh.Find(id[r], hash) != 0) {
        return InvalidArgumentError("tensor '" + spec_.name + ".ids' holds ID " + std::to_string(id[r]) + " twice");
      }
      fresh.Insert(hash, static_cast<uint32_t>(r));
      fresh.row_id_[r] = id[r];
      fresh.count_[r] = static_cast<uint32_t>(std::clamp<int64_t>(counts.data_ptr<int64_t>()[r], 0, UINT32_MAX));
      fresh.last_step_[r] = last.data_ptr<int64_t>()[r];
      ++fresh.used_;
    }
    std::reverse(fresh.free_.begin(), fresh.free_.end());  // reuse low rows first
    fresh.high_water_ = n;
    if (with_optimizer) {
      ADREC_RETURN_IF_ERROR(fresh.optimizer_->LoadState(tensors, spec_.name + ".opt.", n));
    }
    fresh.weight_.narrow(0, 0, n).copy_(w);
    weight_ = fresh.weight_;
    if (with_optimizer) {
      optimizer_ = std::move(fresh.optimizer_);
    } else {
      optimizer_->Init(fresh.capacity_, spec_.dim, device_);
    }
    capacity_ = fresh.capacity_;
    high_water_ = fresh.high_water_;
    used_ = fresh.used_;
    row_id_ = std::move(fresh.row_id_);
    count_ = std::move(fresh.count_);
    last_step_ = std::move(fresh.last_step_);
    free_ = std::move(fresh.free_);
    slots_ = std::move(fresh.slots_);
    last_ttl_check_ = std::numeric_limits<int64_t>::min() / 2;
    return Status::Ok();
  }

 private:
  // For LoadState's scratch copy: same settings, its own optimiser state.
  DynamicTable(const data::TableSpec& spec, torch::Device device, bool fused, uint64_t seed, at::Generator gen,
               const SparseOptimizerOptions& opt)
      : EmbeddingTable(spec), device_(device), fused_(fused), seed_(seed), gen_(std::move(gen)),
        optimizer_(std::move(SparseOptimizer::Make(opt).value())) {}

  // Empty table of `capacity` rows; row 0 (unknown, unadmitted) gets its initial weights unless
  // a checkpoint is about to overwrite them (then the generator is left untouched).
  void Reset(int64_t capacity, bool init_row0 = true) {
    capacity_ = capacity;
    weight_ = EmptyTable({capacity, spec_.dim}, torch::kFloat, device_).zero_();
    if (init_row0) weight_.narrow(0, 0, 1).copy_(InitialRows(1, spec_.dim, spec_.init_std, gen_, device_));
    optimizer_->Init(capacity, spec_.dim, device_);
    row_id_.assign(capacity, -1);
    count_.assign(capacity, 0);
    last_step_.assign(capacity, 0);
    free_.clear();
    high_water_ = 1;
    used_ = 0;
    RebuildIndex();
  }

  int64_t TtlCheckInterval() const {
    return std::max<int64_t>(1, static_cast<int64_t>(spec_.ttl_steps) / kTtlChecksPerPeriod);
  }

  // --- index: linear probing over 8-byte slots (tag << 32 | row); row 0 marks an empty slot ---
  static uint32_t Tag(uint64_t hash) { return static_cast<uint32_t>(hash >> 32); }
  // Home slot from the tag alone (Lemire's multiply-shift range reduction), so rehashing and
  // deletion never need to read the ID array.
  size_t Home(uint32_t tag) const { return static_cast<size_t>((static_cast<uint64_t>(tag) * slots_.size()) >> 32); }

  uint32_t Find(int64_t id, uint64_t hash) const {
    const uint32_t tag = Tag(hash);
    const size_t n = slots_.size();
    for (size_t i = Home(tag);; i = i + 1 == n ? 0 : i + 1) {
      const uint64_t s = slots_[i];
      const uint32_t row = static_cast<uint32_t>(s);
      if (row == 0) return 0;
      if (static_cast<uint32_t>(s >> 32) == tag && row_id_[row] == id) return row;
    }
  }

  void Insert(uint64_t hash, uint32_t row) {
    const uint32_t tag = Tag(hash);
    const size_t n = slots_.size();
    size_t i = Home(tag);
    while (static_cast<uint32_t>(slots_[i]) != 0) i = i + 1 == n ? 0 : i + 1;
    slots_[i] = (static_cast<uint64_t>(tag) << 32) | row;
  }

  // Backward-shift deletion (Knuth 6.4, Algorithm R): no tombstones, probe lengths stay short.
  void Erase(int64_t id, uint64_t hash) {
    const uint32_t tag = Tag(hash);
    const size_t n = slots_.size();
    size_t i = Home(tag);
    for (;; i = i + 1 == n ? 0 : i + 1) {
      const uint32_t row = static_cast<uint32_t>(slots_[i]);
      if (row == 0) return;
      if (static_cast<uint32_t>(slots_[i] >> 32) == tag && row_id_[row] == id) break;
    }
    for (size_t j = i + 1 == n ? 0 : i + 1;; j = j + 1 == n ? 0 : j + 1) {
      const uint64_t s = slots_[j];
      if (static_cast<uint32_t>(s) == 0) break;
      const size_t home = Home(static_cast<uint32_t>(s >> 32));
      // The entry at j may move to the hole at i when i lies cyclically in [home, j).
      if ((j + n - home) % n >= (j + n - i) % n) {
        slots_[i] = s;
        i = j;
      }
    }
    slots_[i] = 0;
  }

  void RebuildIndex() {
    const size_t n = std::max<size_t>(16, static_cast<size_t>(std::ceil(static_cast<double>(capacity_) / kMaxLoad)));
    slots_.assign(n, 0);
    for (int64_t r = 1; r < high_water_; ++r) {
      if (row_id_[r] != -1) Insert(HashId(static_cast<uint64_t>(row_id_[r]), seed_), static_cast<uint32_t>(r));
    }
  }

  // --- rows ---
  uint32_t Allocate(int64_t step) {
    if (free_.empty() && high_water_ == capacity_) {
      const uint64_t limit = spec_.max_rows > 0 ? spec_.max_rows : std::numeric_limits<uint32_t>::max();
      if (static_cast<uint64_t>(capacity_) < limit) {
        Grow(static_cast<int64_t>(std::min<uint64_t>(
            limit, std::max<uint64_t>(capacity_ + 64, static_cast<uint64_t>(capacity_ * kGrowth)))));
      } else {
        Evict(step);
      }
    }
    if (!free_.empty()) {
      const uint32_t row = free_.back();
      free_.pop_back();
      return row;
    }
    if (high_water_ < capacity_) return static_cast<uint32_t>(high_water_++);
    return 0;
  }

  void Grow(int64_t capacity) {
    torch::Tensor grown = EmptyTable({capacity, spec_.dim}, torch::kFloat, device_).zero_();
    grown.narrow(0, 0, capacity_).copy_(weight_);
    weight_ = grown;
    optimizer_->Resize(capacity);
    row_id_.resize(capacity, -1);
    count_.resize(capacity, 0);
    last_step_.resize(capacity, 0);
    capacity_ = capacity;
    RebuildIndex();
  }

  void Free(uint32_t row) {
    Erase(row_id_[row], HashId(static_cast<uint64_t>(row_id_[row]), seed_));
    row_id_[row] = -1;
    count_[row] = 0;
    --used_;
    free_.push_back(row);
  }

  // Frees the coldest kEvictFraction of the rows (lfu: fewest occurrences, the least recent
  // first among equals; lru: oldest touch), never a row this step already handed out. Remaining
  // ties go to the lower row, so runs are reproducible.
  void Evict(int64_t step) {
    struct Candidate {
      int64_t primary, secondary;
      uint32_t row;
      bool operator<(const Candidate& o) const {
        return std::tie(primary, secondary, row) < std::tie(o.primary, o.secondary, o.row);
      }
    };
    std::vector<Candidate> candidates;
    candidates.reserve(static_cast<size_t>(used_));
    const bool lfu = spec_.eviction == "lfu";
    for (int64_t r = 1; r < high_water_; ++r) {
      if (row_id_[r] == -1 || last_step_[r] == step) continue;
      const uint32_t row = static_cast<uint32_t>(r);
      candidates.push_back(lfu ? Candidate{static_cast<int64_t>(count_[r]), last_step_[r], row}
                               : Candidate{last_step_[r], 0, row});
    }
    const size_t want = std::max<size_t>(1, static_cast<size_t>(kEvictFraction * static_cast<double>(capacity_)));
    const size_t k = std::min(candidates.size(), want);
    if (k == 0) return;
    std::nth_element(candidates.begin(), candidates.begin() + static_cast<ptrdiff_t>(k - 1), candidates.end());
    candidates.resize(k);
    std::sort(candidates.begin(), candidates.end(), [](auto& a, auto& b) { return a.row > b.row; });
    for (const Candidate& c : candidates) Free(c.row);  // free_ pops the lowest row first
  }

  void ExpireOlderThan(int64_t oldest_kept) {
    for (int64_t r = high_water_ - 1; r >= 1; --r) {
      if (row_id_[r] != -1 && last_step_[r] < oldest_kept) Free(static_cast<uint32_t>(r));
    }
  }

  // A new or reused row: fresh N(0, init_std²) weights and fresh optimiser state.
  void InitRows(const std::vector<uint32_t>& rows) {
    std::vector<int64_t> r64(rows.begin(), rows.end());
    torch::Tensor idx = torch::tensor(r64, torch::kLong);
    if (!device_.is_cpu()) idx = idx.to(device_);
    weight_.index_copy_(0, idx, InitialRows(static_cast<int64_t>(rows.size()), spec_.dim, spec_.init_std, gen_, device_));
    optimizer_->ResetRows(idx);
  }

  torch::Device device_;
  bool fused_;
  uint64_t seed_;
  at::Generator gen_;
  std::unique_ptr<SparseOptimizer> optimizer_;
  std::unique_ptr<AdmissionSketch> sketch_;
  int64_t initial_capacity_ = 0;

  torch::Tensor weight_;               // [capacity_, dim]
  int64_t capacity_ = 0;
  int64_t high_water_ = 1;             // rows [high_water_, capacity_) were never handed out
  uint64_t used_ = 0;                  // rows owned by an ID
  std::vector<int64_t> row_id_;        // per row: its ID, -1 when free (row 0 is always -1)
  std::vector<uint32_t> count_;        // per row: occurrences since admission (lfu)
  std::vector<int64_t> last_step_;     // per row: the last training step that read it (lru, ttl)
  std::vector<uint32_t> free_;         // freed rows, reused before new ones
  std::vector<uint64_t> slots_;        // the ID index
  std::vector<uint32_t> pending_init_;
  int64_t last_ttl_check_ = std::numeric_limits<int64_t>::min() / 2;
};

}  // namespace

std::unique_ptr<EmbeddingTable> MakeDynamicTable(const data::TableSpec& spec, const TableOptions& options,
                                                 std::unique_ptr<SparseOptimizer> optimizer) {
  return std::make_unique<DynamicTable>(spec, options, std::move(optimizer));
}

}  // namespace adrec::embedding
