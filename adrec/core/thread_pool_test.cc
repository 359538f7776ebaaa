#include "adrec/core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <numeric>

#include "adrec/core/hash.h"
#include "adrec/core/progress.h"

namespace adrec {
namespace {

TEST(ThreadPoolTest, SubmitReturnsValues) {
  ThreadPool pool(3);
  std::vector<std::future<int>> fs;
  for (int i = 0; i < 20; ++i) fs.push_back(pool.Submit([i] { return i * i; }));
  int sum = 0;
  for (auto& f : fs) sum += f.get();
  EXPECT_EQ(sum, 2470);
}

TEST(ThreadPoolTest, ParallelForCoversEveryIndexOnce) {
  ThreadPool pool(2);
  std::vector<std::atomic<int>> hits(10007);
  pool.ParallelFor(hits.size(), [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) hits[i]++;
  });
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
}

TEST(ThreadPoolTest, NestedParallelForDoesNotDeadlock) {
  ThreadPool pool(2);
  std::atomic<int> total{0};
  pool.ParallelFor(4, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      pool.ParallelFor(100, [&](size_t b2, size_t e2) { total += static_cast<int>(e2 - b2); });
    }
  });
  EXPECT_EQ(total.load(), 400);
}

TEST(HashTest, StreamingEqualsOneShot) {
  std::string s = "adrec hashes with XXH3";
  StreamingHash64 h(7);
  h.Update(s.data(), 5);
  h.Update(s.data() + 5, s.size() - 5);
  EXPECT_EQ(h.Digest(), Hash64(s, 7));
  EXPECT_NE(Hash64(s, 7), Hash64(s, 8));
  EXPECT_NE(HashId(1), HashId(2));
}

TEST(ProgressTest, HumanFormats) {
  EXPECT_EQ(Progress::HumanCount(1500), "1.5k");
  EXPECT_EQ(Progress::HumanCount(2.5e6), "2.50M");
  EXPECT_EQ(Progress::HumanDuration(75), "1m15s");
  Progress p("t", 10, ProgressOptions{.enabled = false});
  p.Add(4);
  p.Add(6);
  EXPECT_EQ(p.done(), 10u);
}

}  // namespace
}  // namespace adrec
