#include "adrec/online/attribution.h"

#include <gtest/gtest.h>

#include <random>
#include <tuple>

namespace adrec::online {
namespace {

using data::Action;

class Log {
 public:
  serve::LoggedEvent Next(const std::string& user, const std::string& item, Action a, uint32_t ts) {
    ++position_;
    return {position_, {"e" + std::to_string(position_), user, item, a, ts, "feed", 0.f, 0, ""}};
  }

 private:
  uint64_t position_ = 0;
};

std::vector<Attributed> Feed(Attributor& at, const std::vector<serve::LoggedEvent>& events) {
  std::vector<Attributed> out;
  for (const auto& e : events) {
    auto got = at.Add(e);
    out.insert(out.end(), got.begin(), got.end());
  }
  return out;
}

AttributionOptions Options(DelayPolicy policy) {
  AttributionOptions o;
  o.policy = policy;
  o.window_s = 100;
  o.lateness_s = 10;
  o.max_skew_s = 1000;
  return o;
}

TEST(Attributor, WindowPolicyWaitsForTheWindowThenEmitsFinalLabels) {
  Log log;
  Attributor at(Options(DelayPolicy::kWindow));
  EXPECT_TRUE(Feed(at, {log.Next("u", "a", Action::kImpression, 1000), log.Next("u", "b", Action::kImpression, 1010),
                        log.Next("u", "a", Action::kClick, 1050), log.Next("v", "c", Action::kImpression, 1105)})
                  .empty())
      << "no window has closed";
  // Time 1119 puts the watermark at 1109: the impression of 1000 closes (1100 <= 1109), 1010 not.
  auto first = at.Add(log.Next("v", "c", Action::kImpression, 1119));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].impression.item_id, "a");
  ASSERT_EQ(first[0].outcomes.size(), 1u);
  EXPECT_EQ(first[0].outcomes[0].action, Action::kClick);
  auto second = at.Add(log.Next("v", "c", Action::kImpression, 1125));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].impression.item_id, "b");
  EXPECT_TRUE(second[0].outcomes.empty());
  EXPECT_EQ(at.stats().impressions, 5u);
  EXPECT_EQ(at.stats().outcomes, 1u);
}

TEST(Attributor, FakeNegativesGoAtOnceAndEachNewKindOfOutcomeAgain) {
  Log log;
  Attributor at(Options(DelayPolicy::kFakeNegative));
  auto imp = at.Add(log.Next("u", "a", Action::kImpression, 1000));
  ASSERT_EQ(imp.size(), 1u);
  EXPECT_FALSE(imp[0].delayed);
  EXPECT_TRUE(imp[0].outcomes.empty());
  auto click = at.Add(log.Next("u", "a", Action::kClick, 1020));
  ASSERT_EQ(click.size(), 1u);
  EXPECT_TRUE(click[0].delayed);
  EXPECT_EQ(click[0].position, imp[0].position);
  EXPECT_EQ(click[0].outcomes.size(), 1u);
  EXPECT_TRUE(at.Add(log.Next("u", "a", Action::kClick, 1021)).empty()) << "a second click adds no new label";
  auto conv = at.Add(log.Next("u", "a", Action::kConversion, 1090));
  ASSERT_EQ(conv.size(), 1u);
  EXPECT_EQ(conv[0].outcomes.size(), 3u);
  EXPECT_EQ(conv[0].outcomes.back().action, Action::kConversion);
}

TEST(Attributor, OutcomesOutsideTheWindowOrWithoutAnImpressionAreUnattributed) {
  Log log;
  Attributor at(Options(DelayPolicy::kFakeNegative));
  Feed(at, {log.Next("u", "a", Action::kImpression, 1000), log.Next("u", "a", Action::kClick, 1101),
            log.Next("u", "z", Action::kClick, 1102), log.Next("w", "q", Action::kView, 1103)});
  EXPECT_EQ(at.stats().unattributed, 0u) << "an impression may still come for them";
  Feed(at, {log.Next("x", "y", Action::kImpression, 1200)});
  EXPECT_EQ(at.stats().unattributed, 2u);
  EXPECT_EQ(at.stats().other, 1u);
}

TEST(Attributor, AnOutcomeLoggedBeforeItsImpressionIsMatchedWhenItComes) {
  Log log;
  Attributor at(Options(DelayPolicy::kFakeNegative));
  EXPECT_TRUE(at.Add(log.Next("u", "a", Action::kClick, 1005)).empty());
  auto got = at.Add(log.Next("u", "a", Action::kImpression, 1000));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[0].delayed);
  EXPECT_TRUE(got[1].delayed);
  EXPECT_EQ(at.stats().out_of_order, 1u);
}

TEST(Attributor, TheLatestImpressionBeforeTheOutcomeTakesIt) {
  Log log;
  Attributor at(Options(DelayPolicy::kWindow));
  Feed(at, {log.Next("u", "a", Action::kImpression, 1000), log.Next("u", "a", Action::kImpression, 1050),
            log.Next("u", "a", Action::kClick, 1060)});
  auto out = Feed(at, {log.Next("v", "b", Action::kImpression, 2000)});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].outcomes.empty());
  EXPECT_EQ(out[1].outcomes.size(), 1u);
}

TEST(Attributor, AClockFarAheadDoesNotCloseEveryWindow) {
  Log log;
  Attributor at(Options(DelayPolicy::kWindow));
  Feed(at, {log.Next("u", "a", Action::kImpression, 1000)});
  EXPECT_TRUE(at.Add(log.Next("v", "b", Action::kImpression, 1000 + 5000)).empty());
  EXPECT_EQ(at.stats().skewed, 1u);
  EXPECT_EQ(at.pending(), 2u);
  EXPECT_TRUE(at.Add(log.Next("v", "c", Action::kImpression, 1000 + 5010)).empty()) << "the same user agrees with itself only";
  EXPECT_EQ(at.pending(), 3u);
}

// Traffic that resumes after a quiet spell longer than max_skew: once three users' events agree
// that time jumped, the clock moves and the windows of before close.
TEST(Attributor, AQuietSpellDoesNotStopTheClock) {
  Log log;
  Attributor at(Options(DelayPolicy::kWindow));
  Feed(at, {log.Next("u", "a", Action::kImpression, 1000)});
  EXPECT_TRUE(Feed(at, {log.Next("v", "b", Action::kImpression, 4000), log.Next("w", "b", Action::kImpression, 4001)}).empty());
  const auto out = Feed(at, {log.Next("x", "b", Action::kImpression, 4002)});
  ASSERT_EQ(out.size(), 1u) << "the window of the impression at 1000 closed";
  EXPECT_EQ(out[0].impression.user_id, "u");
  EXPECT_EQ(at.stats().skewed, 3u);
  EXPECT_TRUE(Feed(at, {log.Next("y", "b", Action::kImpression, 4003)}).empty()) << "an ordinary event now";
  EXPECT_EQ(at.stats().skewed, 3u);
}

// A learner killed anywhere resumes from its checkpoint and, over the rest of the log, emits
// exactly what one uninterrupted run emits after that point: nothing twice, nothing missed.
TEST(Attributor, ResumingFromAnyCheckpointEmitsExactlyTheRest) {
  for (DelayPolicy policy : {DelayPolicy::kWindow, DelayPolicy::kFakeNegative}) {
    SCOPED_TRACE(policy == DelayPolicy::kWindow ? "window" : "fake negative");
    std::mt19937 rng(3);
    Log log;
    std::vector<serve::LoggedEvent> events;
    uint32_t ts = 1000;
    for (int i = 0; i < 600; ++i) {
      ts += rng() % 4;
      if (i % 97 == 50) ts += 1500 + rng() % 1000;  // a quiet spell longer than max_skew
      const std::string user = "u" + std::to_string(rng() % 5), item = "i" + std::to_string(rng() % 4);
      const uint32_t r = rng() % 10;
      const Action a = r < 5 ? Action::kImpression : r < 8 ? Action::kClick : r < 9 ? Action::kConversion : Action::kView;
      const bool bad_clock = i % 61 == 30;  // one event from a clock far ahead
      events.push_back(log.Next(user, item, a, bad_clock ? ts + 50000 : ts - rng() % 8));  // a little out of time order
    }
    using Key = std::tuple<uint64_t, bool, size_t>;
    auto keys = [](const std::vector<Attributed>& v) {
      std::vector<Key> k;
      for (const auto& a : v) k.emplace_back(a.position, a.delayed, a.outcomes.size());
      return k;
    };
    Attributor whole(Options(policy));
    const std::vector<Key> all = keys(Feed(whole, events));
    ASSERT_GT(all.size(), 100u);
    EXPECT_GT(whole.stats().skewed, 10u) << "the generator makes gaps and bad clocks";
    for (size_t cut : {1, 51, 52, 53, 57, 91, 200, 333, 440, 599}) {
      Attributor first(Options(policy));
      std::vector<Key> got = keys(Feed(first, {events.begin(), events.begin() + static_cast<ptrdiff_t>(cut)}));
      const AttributionCheckpoint cp = first.Checkpoint();
      ASSERT_LE(cp.replay_from, cut + 1);
      Attributor resumed(Options(policy), cp);
      const auto rest = keys(Feed(resumed, {events.begin() + static_cast<ptrdiff_t>(cp.replay_from - 1), events.end()}));
      got.insert(got.end(), rest.begin(), rest.end());
      EXPECT_EQ(got, all) << "cut after " << cut << " (replay from " << cp.replay_from << ")";
    }
  }
}

}  // namespace
}  // namespace adrec::online
