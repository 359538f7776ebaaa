#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <numeric>
#include <set>

#include "adrec/core/hash.h"
#include "adrec/embedding/embedding.h"
#include "adrec/embedding/embedding_table_internal.h"

namespace adrec::embedding {
namespace {

data::TableSpec Spec(std::string name, data::TableKind kind, uint64_t rows, int dim = 4) {
  data::TableSpec t;
  t.name = std::move(name);
  t.kind = kind;
  t.rows = rows;
  t.dim = dim;
  return t;
}

std::unique_ptr<EmbeddingTable> Make(const data::TableSpec& spec, const std::string& opt = "sgd") {
  TableOptions o;
  o.optimizer.kind = opt;
  auto t = MakeEmbeddingTable(spec, o);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(*t) : nullptr;
}

std::vector<int64_t> Map(EmbeddingTable& t, std::vector<int64_t> ids, bool train, int64_t step) {
  std::vector<int64_t> rows(ids.size(), -7);
  t.MapIds(ids, rows, train, step);
  return rows;
}
int64_t Row(EmbeddingTable& t, int64_t id) { return Map(t, {id}, /*train=*/false, 0)[0]; }

TEST(FixedTable, KnownCodesShiftByOneAndUnknownReadRowZero) {
  auto t = Make(Spec("cat", data::TableKind::kFixed, 5));
  EXPECT_EQ(Map(*t, {0, 1, 3, 4, 5, -1, 1000}, true, 0), (std::vector<int64_t>{1, 2, 4, 0, 0, 0, 0}));
  EXPECT_EQ(t->weight().sizes(), (std::vector<int64_t>{5, 4}));
  EXPECT_EQ(t->rows_in_use(), 5u);
}

TEST(HashedTable, RowIsXxh3OfTheValueSeededByTheTableName) {
  auto t = Make(Spec("h", data::TableKind::kHashed, 1000));
  const std::vector<int64_t> ids = {0, 1, 42, -5, int64_t{1} << 40};
  std::vector<int64_t> rows = Map(*t, ids, true, 0);
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(rows[i], static_cast<int64_t>(HashId(static_cast<uint64_t>(ids[i]), Hash64("h")) % 1000));
  }
  // Another table name hashes differently.
  auto other = Make(Spec("g", data::TableKind::kHashed, 1000));
  EXPECT_NE(Map(*other, ids, true, 0), rows);
}

TEST(EmbeddingTable, FactoryRejectsBadSpecs) {
  EXPECT_FALSE(MakeEmbeddingTable(Spec("f", data::TableKind::kFixed, 0), {}).ok());
  EXPECT_FALSE(MakeEmbeddingTable(Spec("h", data::TableKind::kHashed, 0), {}).ok());
  auto bad = Spec("d", data::TableKind::kDynamic, 0);
  bad.eviction = "fifo";
  auto r = MakeEmbeddingTable(bad, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'d'"), std::string::npos);
  auto opt = Spec("o", data::TableKind::kHashed, 10);
  opt.optimizer = "lion";
  r = MakeEmbeddingTable(opt, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("lion"), std::string::npos);
}

TEST(EmbeddingTable, InitialRowsFollowInitStd) {
  auto spec = Spec("h", data::TableKind::kHashed, 4000, 8);
  spec.init_std = 0.05f;
  auto t = Make(spec);
  EXPECT_NEAR(t->weight().std().item<double>(), 0.05, 0.003);
  EXPECT_NEAR(t->weight().mean().item<double>(), 0.0, 0.003);
}

// Tables over 2 MiB draw their rows into huge-page-advised memory; the numbers must stay
// torch::randn's with the table's generator, so bundles and checkpoints do not change.
TEST(EmbeddingTable, LargeTablesDrawTheRowsOfRandn) {
  auto spec = Spec("big", data::TableKind::kHashed, 70'000, 16);  // 4.3 MiB
  spec.init_std = 0.01f;
  TableOptions options;
  auto t = MakeEmbeddingTable(spec, options);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  at::Generator gen = TableGenerator(spec, options);
  torch::Tensor expected = torch::randn({70'000, 16}, gen, torch::kFloat).mul_(0.01f);
  EXPECT_TRUE(torch::equal((*t)->weight(), expected));
}

TEST(DynamicTable, AdmitsAnIdOnlyAfterAdmitAfterOccurrences) {
  auto spec = Spec("d", data::TableKind::kDynamic, 8);
  spec.admit_after = 3;
  auto t = Make(spec);
  EXPECT_EQ(Map(*t, {77}, true, 1)[0], 0);
  EXPECT_EQ(Map(*t, {77, 5}, true, 2), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(t->rows_in_use(), 1u);
  const int64_t row = Map(*t, {77}, true, 3)[0];
  EXPECT_GT(row, 0);
  EXPECT_EQ(t->rows_in_use(), 2u);
  EXPECT_EQ(Map(*t, {77, 5}, true, 4), (std::vector<int64_t>{row, 0}));  // 5 has 2 occurrences
  // Within one call, the third occurrence is admitted and later ones share its row.
  std::vector<int64_t> rows = Map(*t, {9, 9, 9, 9}, true, 5);
  EXPECT_EQ(rows[0], 0);
  EXPECT_EQ(rows[1], 0);
  EXPECT_GT(rows[2], 0);
  EXPECT_EQ(rows[3], rows[2]);
}

TEST(DynamicTable, IsCollisionFreeAndServingDoesNotAllocate) {
  auto t = Make(Spec("d", data::TableKind::kDynamic, 0));
  std::vector<int64_t> ids(5000);
  std::iota(ids.begin(), ids.end(), int64_t{1} << 33);
  std::vector<int64_t> rows = Map(*t, ids, true, 1);
  EXPECT_EQ(std::set<int64_t>(rows.begin(), rows.end()).size(), ids.size());
  EXPECT_EQ(*std::min_element(rows.begin(), rows.end()), 1);
  EXPECT_EQ(t->rows_in_use(), 5001u);
  EXPECT_EQ(Map(*t, ids, false, 2), rows);

  const uint64_t bytes = t->MemoryBytes();
  torch::Tensor before = t->weight().clone();
  EXPECT_EQ(Map(*t, {-1, 3, 99999999}, /*train=*/false, 3), (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(t->rows_in_use(), 5001u);
  EXPECT_EQ(t->MemoryBytes(), bytes);
  EXPECT_TRUE(torch::equal(t->weight(), before));
}

// Hot IDs appear in every step; a stream of one-off IDs overflows max_rows.
void RunEvictionWorkload(EmbeddingTable& t, int64_t hot, int64_t steps, int64_t cold_per_step) {
  int64_t cold = 1'000'000;
  for (int64_t step = 1; step <= steps; ++step) {
    std::vector<int64_t> ids;
    for (int64_t h = 0; h < hot; ++h) ids.push_back(h);
    for (int64_t c = 0; c < cold_per_step; ++c) ids.push_back(cold++);
    Map(t, ids, true, step);
  }
}

TEST(DynamicTable, LfuEvictionKeepsTheHotIds) {
  auto spec = Spec("d", data::TableKind::kDynamic, 16);
  spec.max_rows = 101;
  spec.eviction = "lfu";
  auto t = Make(spec);
  RunEvictionWorkload(*t, 30, 200, 7);
  EXPECT_LE(t->rows_in_use(), 101u);
  EXPECT_EQ(t->weight().size(0), 101);
  for (int64_t h = 0; h < 30; ++h) EXPECT_GT(Row(*t, h), 0) << "hot id " << h;
  // One-off IDs tie on frequency; the least recent of them go first.
  int cold_kept = 0;
  std::string kept;
  for (int64_t c = 1'000'000; c < 1'000'000 + 7 * 100; ++c) {
    if (Row(*t, c) > 0 && ++cold_kept < 10) kept += " " + std::to_string(c) + "@" + std::to_string(Row(*t, c));
  }
  EXPECT_EQ(cold_kept, 0) << "old one-off IDs should have been evicted:" << kept;
  for (int64_t c = 1'000'000 + 7 * 199; c < 1'000'000 + 7 * 200; ++c) EXPECT_GT(Row(*t, c), 0) << "newest id " << c;
}

TEST(DynamicTable, LruEvictionKeepsTheRecentIds) {
  auto spec = Spec("d", data::TableKind::kDynamic, 16);
  spec.max_rows = 101;
  spec.eviction = "lru";
  auto t = Make(spec);
  // Hot IDs were counted a lot long ago (LFU would keep them) but only 0..9 stay recent.
  for (int64_t step = 1; step <= 20; ++step) Map(*t, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, true, step);
  int64_t cold = 1'000'000;
  for (int64_t step = 21; step <= 200; ++step) {
    std::vector<int64_t> ids = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    for (int c = 0; c < 5; ++c) ids.push_back(cold++);
    Map(*t, ids, true, step);
  }
  for (int64_t h = 0; h < 10; ++h) EXPECT_GT(Row(*t, h), 0) << "recent id " << h;
  for (int64_t h = 10; h < 15; ++h) EXPECT_EQ(Row(*t, h), 0) << "stale id " << h;
  for (int64_t c = cold - 5; c < cold; ++c) EXPECT_GT(Row(*t, c), 0) << "newest id " << c;
}

TEST(DynamicTable, EvictionNeverTakesARowHandedOutInTheSameStep) {
  auto spec = Spec("d", data::TableKind::kDynamic, 4);
  spec.max_rows = 9;  // 8 ID rows
  spec.eviction = "lru";
  auto t = Make(spec);
  std::vector<int64_t> ids(20);
  std::iota(ids.begin(), ids.end(), 100);
  std::vector<int64_t> rows = Map(*t, ids, true, 1);
  std::set<int64_t> nonzero;
  for (int64_t r : rows) {
    if (r != 0) {
      EXPECT_TRUE(nonzero.insert(r).second) << "row " << r << " handed out twice";
    }
  }
  EXPECT_EQ(nonzero.size(), 8u);
  // Next step the old rows are evictable again.
  std::vector<int64_t> next = Map(*t, {500, 501}, true, 2);
  EXPECT_GT(next[0], 0);
  EXPECT_GT(next[1], 0);
}

TEST(DynamicTable, TtlExpiresUntouchedRows) {
  auto spec = Spec("d", data::TableKind::kDynamic, 16);
  spec.ttl_steps = 10;
  auto t = Make(spec);
  Map(*t, {1, 2}, true, 0);
  for (int64_t step = 1; step <= 30; ++step) Map(*t, {2}, true, step);
  EXPECT_EQ(Row(*t, 1), 0);
  EXPECT_GT(Row(*t, 2), 0);
  EXPECT_EQ(t->rows_in_use(), 2u);
  // Expiry waits for the TTL: an ID touched 5 steps ago is kept.
  Map(*t, {3}, true, 31);
  for (int64_t step = 32; step <= 36; ++step) Map(*t, {2}, true, step);
  EXPECT_GT(Row(*t, 3), 0);
}

TEST(DynamicTable, ReusedRowGetsFreshWeightsAndOptimizerState) {
  auto spec = Spec("d", data::TableKind::kDynamic, 4, 8);
  spec.max_rows = 2;  // a single ID row
  spec.eviction = "lru";
  spec.init_std = 0.01f;
  auto t = Make(spec, "adagrad");
  const int64_t row = Map(*t, {7}, true, 1)[0];
  ASSERT_EQ(row, 1);
  torch::Tensor rows = torch::tensor({row}, torch::kLong);
  for (int i = 0; i < 5; ++i) t->ApplyGradient(rows, torch::full({1, 8}, -10.f), 1);
  EXPECT_GT(t->weight()[row].abs().min().item<float>(), 0.1f);
  auto opt_sum = [&] {
    for (auto& [name, tensor] : t->State(true)) {
      if (name == "d.opt.sum") return tensor[row].item<float>();
    }
    return -1.f;
  };
  EXPECT_GT(opt_sum(), 1.f);
  // A new ID takes the row over: N(0, 0.01²) weights, zero accumulator.
  EXPECT_EQ(Map(*t, {8}, true, 2)[0], row);
  EXPECT_EQ(Row(*t, 7), 0);
  EXPECT_LT(t->weight()[row].abs().max().item<float>(), 0.06f);
  EXPECT_GT(t->weight()[row].abs().max().item<float>(), 0.f);
  EXPECT_EQ(opt_sum(), 0.f);
}

TEST(DynamicTable, StateRoundTripKeepsLookupsAndTraining) {
  auto spec = Spec("d", data::TableKind::kDynamic, 8);
  spec.max_rows = 64;
  spec.eviction = "lfu";
  auto a = Make(spec, "adam");
  std::vector<int64_t> ids;
  for (int64_t step = 1; step <= 20; ++step) {
    ids.clear();
    for (int64_t i = 0; i < 10; ++i) ids.push_back((step * 7 + i * 13) % 90);
    std::vector<int64_t> rows = Map(*a, ids, true, step);
    std::set<int64_t> uniq(rows.begin(), rows.end());
    torch::Tensor r = torch::tensor(std::vector<int64_t>(uniq.begin(), uniq.end()), torch::kLong);
    a->ApplyGradient(r, torch::randn({r.size(0), 4}), step);
  }
  std::map<std::string, torch::Tensor> saved;
  for (auto& [name, t] : a->State(true)) saved[name] = t.clone();
  EXPECT_TRUE(saved.count("d.ids") && saved.count("d.counts") && saved.count("d.opt.m"));

  auto b = Make(spec, "adam");
  ASSERT_TRUE(b->LoadState(saved, true).ok());
  std::vector<int64_t> all(100);
  std::iota(all.begin(), all.end(), 0);
  std::vector<int64_t> ra = Map(*a, all, false, 21), rb = Map(*b, all, false, 21);
  EXPECT_EQ(ra, rb);
  EXPECT_EQ(a->rows_in_use(), b->rows_in_use());
  torch::Tensor ta = torch::tensor(ra, torch::kLong);
  EXPECT_TRUE(torch::equal(a->weight().index_select(0, ta), b->weight().index_select(0, ta)));
  // One more step with the same gradient stays identical (optimiser state came along).
  std::vector<int64_t> seen = {3, 10, 17};
  std::vector<int64_t> sa = Map(*a, seen, true, 22), sb = Map(*b, seen, true, 22);
  EXPECT_EQ(sa, sb);
  torch::Tensor g = torch::randn({3, 4});
  a->ApplyGradient(torch::tensor(sa, torch::kLong), g, 22);
  b->ApplyGradient(torch::tensor(sb, torch::kLong), g, 22);
  torch::Tensor ts = torch::tensor(sa, torch::kLong);
  EXPECT_TRUE(torch::equal(a->weight().index_select(0, ts), b->weight().index_select(0, ts)));
}

TEST(DynamicTable, LoadStateNamesTheBadTensorAndKeepsTheTable) {
  auto spec = Spec("d", data::TableKind::kDynamic, 8);
  auto a = Make(spec, "adagrad");
  Map(*a, {1, 2, 3}, true, 1);
  std::map<std::string, torch::Tensor> saved;
  for (auto& [name, t] : a->State(false)) saved[name] = t;
  auto missing = saved;
  missing.erase("d.counts");
  Status s = a->LoadState(missing, false);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("d.counts"), std::string::npos) << s.message();
  auto wrong = saved;
  wrong["d.weight"] = torch::zeros({saved["d.weight"].size(0), 5});
  s = a->LoadState(wrong, false);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("d.weight"), std::string::npos) << s.message();
  s = a->LoadState(saved, /*with_optimizer=*/true);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("d.opt."), std::string::npos) << s.message();
  EXPECT_GT(Row(*a, 2), 0);

  auto fixed = Make(Spec("f", data::TableKind::kFixed, 6));
  s = fixed->LoadState({{"f.weight", torch::zeros({5, 4})}}, false);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("f.weight"), std::string::npos);
}

TEST(DynamicTable, MemoryStaysWithinOneAndAHalfTimesTheRawRowsAtOneMillionIds) {
  auto spec = Spec("d", data::TableKind::kDynamic, 0, 16);
  auto t = Make(spec);
  const int64_t kIds = 1'000'000, kBatch = 65'536;
  std::vector<int64_t> ids(kBatch), rows(kBatch);
  const auto start = std::chrono::steady_clock::now();
  uint64_t worst_ratio_milli = 0;
  for (int64_t base = 0; base < kIds; base += kBatch) {
    const int64_t n = std::min(kBatch, kIds - base);
    for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int64_t>(HashId(base + i, 9) >> 1);  // spread-out raw IDs
    t->MapIds(std::span(ids.data(), n), std::span(rows.data(), n), true, base / kBatch);
    if (base + n >= 100'000) {
      const double raw = static_cast<double>(t->rows_in_use()) * 16 * 4;
      worst_ratio_milli = std::max<uint64_t>(worst_ratio_milli, static_cast<uint64_t>(1000 * t->MemoryBytes() / raw));
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(t->rows_in_use(), static_cast<uint64_t>(kIds + 1));
  const double raw = static_cast<double>(t->rows_in_use()) * 16 * 4;
  const double ratio = t->MemoryBytes() / raw;
  std::printf("[ dynamic ] 1M IDs dim 16: %.1f MiB (weights + index) for %.1f MiB of rows = %.3fx "
              "(worst %.3fx from 100k IDs on); inserted in %.2f s\n",
              t->MemoryBytes() / 1048576.0, raw / 1048576.0, ratio, worst_ratio_milli / 1000.0, secs);
  EXPECT_LE(ratio, 1.5);
  EXPECT_LE(worst_ratio_milli, 1500u);
}

// Row-wise quantisation: every value within half a step of its row's scale, exact at each
// row's minimum and maximum's grid, and 4-bit codes packed two to a byte.
TEST(QuantizeRows, DecodedRowsAreWithinHalfAStepAndPacked) {
  torch::manual_seed(1);
  const torch::Tensor w = torch::randn({50, 7}) * torch::rand({50, 1}) * 3;
  for (int bits : {8, 4}) {
    const QuantizedRows q = QuantizeRows(w, bits);
    EXPECT_EQ(q.codes.scalar_type(), torch::kUInt8);
    EXPECT_EQ(q.codes.size(1), bits == 8 ? 7 : 4);
    EXPECT_EQ(q.params.scalar_type(), torch::kHalf);
    const torch::Tensor back = DequantizeRows(q, bits, 7);
    ASSERT_EQ(back.sizes(), w.sizes());
    const torch::Tensor step = q.params.select(1, 0).to(torch::kFloat).unsqueeze(1);
    // Half a step, plus the float16 rounding of the row's minimum.
    EXPECT_TRUE(((back - w).abs() <= step * 0.5 + w.abs().amax(1, true) * 1e-3 + 1e-6).all().item<bool>()) << bits;
    const std::vector<int64_t> rows = {3, 0, 49};
    EXPECT_TRUE(torch::equal(DequantizeRows(q, bits, 7, rows), back.index_select(0, torch::tensor(rows))));
  }
  // A constant row decodes to its value (scale 0).
  const QuantizedRows flat = QuantizeRows(torch::full({1, 4}, 0.25f), 8);
  EXPECT_TRUE(torch::allclose(DequantizeRows(flat, 8, 4), torch::full({1, 4}, 0.25f)));
}

// A table declared with 8-bit storage holds codes: it loads them, decodes the rows it is asked
// for, takes a quarter of the bytes plus its parameters, and refuses to train.
TEST(QuantizeRows, QuantisedTablesLoadDecodeAndRefuseToTrain) {
  data::TableSpec spec = Spec("q", data::TableKind::kHashed, 100, 16);
  torch::manual_seed(2);
  const torch::Tensor w = torch::randn({100, 16}) * 0.1;
  spec.storage_bits = 8;
  auto t = Make(spec);
  ASSERT_TRUE(t);
  const QuantizedRows q = QuantizeRows(w, 8);
  ASSERT_TRUE(t->LoadState({{"q.qcodes", q.codes}, {"q.qparams", q.params}}, false).ok());
  EXPECT_EQ(t->MemoryBytes(), 100u * (16 + 4));
  const std::vector<int64_t> rows = {5, 7};
  EXPECT_TRUE(torch::allclose(t->DecodedRows(rows), w.index_select(0, torch::tensor(rows)), 0, 2e-3));
  EXPECT_EQ(t->DecodedRows({}).size(0), 0);
  EXPECT_EQ(t->State(false).size(), 2u);
  EXPECT_THROW(t->ApplyGradient(torch::tensor({1L}), torch::zeros({1, 16}), 1), c10::Error);
  EXPECT_FALSE(t->LoadState({{"q.qcodes", q.codes}}, false).ok());
  const Status wrong = t->LoadState({{"q.qcodes", q.codes.to(torch::kFloat)}, {"q.qparams", q.params}}, false);
  EXPECT_NE(wrong.message().find("q.qcodes"), std::string::npos) << wrong.message();
  // Float tables decode nothing: their rows are their weight.
  EXPECT_FALSE(Make(Spec("f", data::TableKind::kHashed, 10))->DecodedRows(rows).defined());
  spec.storage_bits = 5;
  EXPECT_FALSE(MakeEmbeddingTable(spec, {}).ok());
}

}  // namespace
}  // namespace adrec::embedding
