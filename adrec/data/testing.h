// Shared helpers of the tests: a small in-memory dataset from a list of events, a sparse field
// batch from its lists.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "adrec/data/batch.h"
#include "adrec/data/dataset.h"

namespace adrec::data::testing {

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"  // designated initializers below

// Users "u0".., items "i0".., the given scenes; every event must be accepted.
inline Dataset BuildDataset(const std::vector<Event>& events, int users, int items,
                            const std::vector<std::string>& scenes = {}) {
  DatasetBuilder b({.name = "t", .source_format = "test"});
  for (const auto& s : scenes) b.SceneId(s);
  for (int u = 0; u < users; ++u) b.UserId("u" + std::to_string(u));
  for (int i = 0; i < items; ++i) b.ItemId("i" + std::to_string(i));
  for (const Event& e : events) EXPECT_TRUE(b.AddEvent(e).ok());
  auto ds = std::move(b).Finish();
  EXPECT_TRUE(ds.ok()) << ds.status().ToString();
  return std::move(ds).value();
}

#pragma GCC diagnostic pop

// One sparse field of a batch in CSR form: sample i's values are lists[i].
inline SparseFieldBatch Csr(const std::vector<std::vector<int64_t>>& lists) {
  SparseFieldBatch b;
  b.offsets.push_back(0);
  for (const auto& l : lists) {
    b.ids.insert(b.ids.end(), l.begin(), l.end());
    b.offsets.push_back(static_cast<int64_t>(b.ids.size()));
  }
  return b;
}

}  // namespace adrec::data::testing
