#include "adrec/serve/request_features.h"

#include <gtest/gtest.h>

#include <numeric>

#include "adrec/data/features_testing.h"

namespace adrec::serve {
namespace {

using data::feature_testing::MustParse;

// Every kind of field a served ranker reads: IDs, context, user and item columns, histories of
// two kinds, and real-time counters matched on the item and on an item column.
constexpr std::string_view kServedSpec = R"(
[features]
samples = ["impression"]
[[features.fields]]
name = "user"
source = "user"
[[features.fields]]
name = "item"
source = "item"
[[features.fields]]
name = "scene"
source = "scene"
[[features.fields]]
name = "position"
source = "position"
[[features.fields]]
name = "hour"
source = "hour"
[[features.fields]]
name = "age"
source = "user.age"
[[features.fields]]
name = "advertiser"
source = "item.advertiser"
[[features.fields]]
name = "cat2"
source = "item.cat2"
[[features.fields]]
name = "clicked"
kind = "sequence"
source = "history.item"
table = "item"
max_len = 20
[[features.fields]]
name = "clicked_cat2"
kind = "sequence"
source = "history.cat2"
table = "cat2"
history_actions = ["click", "download"]
max_age_s = 86400
[[features.fields]]
name = "seen_ad_1d"
kind = "dense"
source = "recent.impression"
window_s = 86400
match = "item"
[[features.fields]]
name = "clicks_cat2_1h"
kind = "dense"
source = "recent.click"
window_s = 3600
match = "cat2"
decay_s = 1800
normalize = "log1p"
[[features.fields]]
name = "bid"
kind = "dense"
source = "item.bid"
normalize = "standard"
[[features.targets]]
name = "click"
action = "click"
[[features.targets]]
name = "conversion"
action = "conversion"
given = "click"
)";

class RequestFeaturesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data::SyntheticOptions o = data::feature_testing::SmallWorld();
    o.days = 7;  // histories of a few dozen events by the last day
    auto world = data::GenerateSyntheticWorld(o);
    ASSERT_TRUE(world.ok()) << world.status().ToString();
    ds_ = std::move(world).value();
    spec_ = MustParse(kServedSpec);
    ASSERT_TRUE(spec_.Bind(ds_).ok());
    auto samples = data::MakeSamples(ds_, spec_, nullptr, data::SplitPart::kTrain);
    ASSERT_TRUE(samples.ok()) << samples.status().ToString();
    samples_ = std::move(samples).value();
    spec_.FitNormalization(ds_, samples_.events);
    auto rf = RequestFeatures::Create(ds_, {.max_requests = 64});
    ASSERT_TRUE(rf.ok()) << rf.status().ToString();
    rf_ = std::make_unique<RequestFeatures>(std::move(rf).value());
  }

  // The request that sample event e was: its user's events before it, its item as the candidate.
  RequestRows RequestOf(uint64_t e) const {
    const data::EventColumns& ev = ds_.events;
    RequestRows q;
    q.user = ev.user[e];
    for (uint64_t j = ds_.UserRange(ev.user[e]).first; j < e; ++j) {
      q.history.push_back({ev.item[j], ev.time[j], ev.scene[j], static_cast<data::Action>(ev.action[j]), ev.value[j]});
    }
    q.candidates = {ev.item[e]};
    q.time = ev.time[e];
    q.scene = ev.scene[e];
    q.position = ev.position[e];
    return q;
  }

  data::Dataset ds_;
  data::FeatureSpec spec_;
  data::SampleSet samples_;
  std::unique_ptr<RequestFeatures> rf_;
};

// The features a request reads equal those training read for the same moment: one code path.
TEST_F(RequestFeaturesTest, ServedRowsEqualTheTrainingRows) {
  // Samples of 40 distinct users, late in their logs (long histories, live counters).
  std::vector<uint64_t> picked;
  std::vector<bool> used(ds_.num_users(), false);
  for (size_t s = samples_.size(); s-- > 0 && picked.size() < 40;) {
    const uint32_t u = ds_.events.user[samples_.events[s]];
    if (used[u]) continue;
    used[u] = true;
    picked.push_back(s);
  }
  ASSERT_EQ(picked.size(), 40u);
  data::Batch train;
  data::BuildBatch(ds_, spec_, samples_, picked, &train);

  std::vector<RequestRows> requests;
  for (uint64_t s : picked) requests.push_back(RequestOf(samples_.events[s]));
  data::Batch served;
  ASSERT_TRUE(rf_->Build(requests, spec_, samples_.history_actions, &served).ok());

  ASSERT_EQ(served.size, train.size);
  EXPECT_EQ(served.user, train.user);
  EXPECT_EQ(served.scene, train.scene);
  EXPECT_EQ(served.dense, train.dense);
  ASSERT_EQ(served.sparse.size(), train.sparse.size());
  for (size_t k = 0; k < train.sparse.size(); ++k) {
    EXPECT_EQ(served.sparse[k].ids, train.sparse[k].ids) << spec_.SparseFields()[k]->name;
    EXPECT_EQ(served.sparse[k].offsets, train.sparse[k].offsets) << spec_.SparseFields()[k]->name;
  }
  // Not vacuous: the histories and counters hold values.
  const int clicked = 8, seen = 0;
  EXPECT_GT(train.sparse[clicked].ids.size(), 20u);
  float counted = 0;
  for (size_t b = 0; b < train.size; ++b) counted += train.dense[b * spec_.DenseWidth() + seen];
  EXPECT_GT(counted, 0.f);
}

// Candidates of one request never read each other as history: scoring 30 items at once gives
// each the features it has when scored alone.
TEST_F(RequestFeaturesTest, CandidatesDoNotSeeEachOther) {
  RequestRows q = RequestOf(samples_.events[samples_.size() - 1]);
  q.candidates.resize(30);
  std::iota(q.candidates.begin(), q.candidates.end(), 0u);
  data::Batch together;
  ASSERT_TRUE(rf_->Build({&q, 1}, spec_, samples_.history_actions, &together).ok());
  for (uint32_t c : {0u, 7u, 29u}) {
    RequestRows one = q;
    one.candidates = {c};
    data::Batch alone;
    ASSERT_TRUE(rf_->Build({&one, 1}, spec_, samples_.history_actions, &alone).ok());
    const int w = spec_.DenseWidth();
    EXPECT_TRUE(std::equal(alone.dense.begin(), alone.dense.end(), together.dense.begin() + c * w)) << c;
    for (size_t k = 0; k < alone.sparse.size(); ++k) {
      const auto& t = together.sparse[k];
      std::vector<int64_t> row(t.ids.begin() + t.offsets[c], t.ids.begin() + t.offsets[c + 1]);
      EXPECT_EQ(row, alone.sparse[k].ids) << "candidate " << c << " field " << spec_.SparseFields()[k]->name;
    }
  }
}

// An unknown user reads the unknown rows of ID tables and missing user attributes, and its
// stored events still feed its history.
TEST_F(RequestFeaturesTest, UnknownUsersTakeTheColdStartRows) {
  RequestRows known = RequestOf(samples_.events[samples_.size() - 1]);
  RequestRows cold = known;
  cold.user.reset();
  data::Batch b;
  const RequestRows both[] = {known, cold};
  ASSERT_TRUE(rf_->Build(both, spec_, samples_.history_actions, &b).ok());
  ASSERT_EQ(b.size, 2u);
  const uint32_t slot = b.user[1];
  EXPECT_GE(slot, rf_->known_users());
  // A fixed user table maps a value past its vocabulary to its unknown row.
  EXPECT_GE(b.sparse[0].ids[1], static_cast<int64_t>(ds_.num_users()));
  EXPECT_EQ(b.sparse[5].ids[1], 0) << "age of an unknown user is missing";
  EXPECT_EQ(b.sparse[8].offsets[2] - b.sparse[8].offsets[1], b.sparse[8].offsets[1] - b.sparse[8].offsets[0])
      << "the cold user's own history is read";
}

TEST_F(RequestFeaturesTest, BadRequestsAreErrorsNamingTheProblem) {
  RequestRows q = RequestOf(samples_.events[0]);
  RequestRows bad_item = q;
  bad_item.candidates = {ds_.num_items()};
  data::Batch b;
  Status s = rf_->Build({&bad_item, 1}, spec_, 0, &b);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("candidate item"), std::string::npos) << s.message();
  const RequestRows twice[] = {q, q};
  s = rf_->Build(twice, spec_, 0, &b);
  EXPECT_NE(s.message().find("twice"), std::string::npos) << s.message();
  std::vector<RequestRows> many(65, q);
  for (size_t i = 0; i < many.size(); ++i) many[i].user.reset();
  s = rf_->Build(many, spec_, 0, &b);
  EXPECT_NE(s.message().find("at most 64"), std::string::npos) << s.message();

  data::FeatureSpec criteo = MustParse(R"(
[features]
[[features.fields]]
name = "c1"
source = "event.C1"
)");
  Status servable = RequestFeatures::CheckServable(criteo);
  ASSERT_FALSE(servable.ok());
  EXPECT_NE(servable.message().find("'c1'"), std::string::npos) << servable.message();
  EXPECT_TRUE(RequestFeatures::CheckServable(spec_).ok());
}

}  // namespace
}  // namespace adrec::serve
