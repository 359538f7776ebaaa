// Shared helper of the data and eval tests: a small in-memory dataset from a list of events.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

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

}  // namespace adrec::data::testing
