#include "adrec/train/retrieval_vectors.h"

#include <gtest/gtest.h>

#include <vector>

namespace adrec::train {
namespace {

// Every query ranks the catalogue by popularity: item 0 (5), item 2 (3), item 1 (1), item 3 (0).
TEST(PopularityReport, RanksEveryQueryByPopularityWithTiesPessimistic) {
  const std::vector<float> popularity = {5, 1, 3, 0};
  const std::vector<uint32_t> queries = {0, 2, 1, 3};
  RetrievalReportOptions o;
  o.ks = {1, 2, 3};
  auto r = PopularityReport(popularity, queries, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_DOUBLE_EQ((*r)["hr@1"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ((*r)["hr@2"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ((*r)["hr@3"].get<double>(), 0.75);
  EXPECT_NEAR((*r)["mrr"].get<double>(), (1.0 + 1.0 / 2 + 1.0 / 3 + 1.0 / 4) / 4, 1e-12);
  EXPECT_EQ((*r)["items"], 4);
  // Two items tied at the top: each query of one of them counts rank 2, not 1.
  auto tied = PopularityReport(std::vector<float>{2, 2, 0}, std::vector<uint32_t>{1, 0}, o);
  ASSERT_TRUE(tied.ok());
  EXPECT_DOUBLE_EQ((*tied)["hr@1"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ((*tied)["hr@2"].get<double>(), 1.0);
  // A query about an item past the catalogue is an error, not a read past the end.
  EXPECT_FALSE(PopularityReport(popularity, std::vector<uint32_t>{4}, o).ok());
}

}  // namespace
}  // namespace adrec::train
