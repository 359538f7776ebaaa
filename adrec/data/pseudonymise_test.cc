#include "adrec/data/pseudonymise.h"

#include <gtest/gtest.h>

namespace adrec::data {
namespace {

Dataset ThreeUsers() {
  DatasetBuilder b({.name = "t", .source_format = "test", .provenance = "unit test", .with_truth = false});
  const uint32_t i0 = b.ItemId("i0");
  for (const char* u : {"alice@example.com", "bob", "carol"}) {
    EXPECT_TRUE(b.AddEvent({.user = b.UserId(u), .item = i0, .timestamp = 10}).ok());
  }
  return *std::move(b).Finish();
}

TEST(Pseudonymise, ReplacesEveryUserNameAndNothingElse) {
  SecretKey key;
  key.bytes.fill(7);
  Dataset ds = ThreeUsers();
  const auto events = ds.events.user;
  ASSERT_TRUE(PseudonymiseUsers(&ds, key).ok());
  ASSERT_EQ(ds.num_users(), 3u);
  EXPECT_EQ(ds.events.user, events);  // dense IDs and their order are unchanged
  EXPECT_EQ(ds.users.Name(0), UserPseudonym(key, "alice@example.com"));
  EXPECT_EQ(ds.users.Name(0).size(), 32u);
  EXPECT_FALSE(ds.users.Find("bob").has_value());
  EXPECT_EQ(ds.users.Find(UserPseudonym(key, "bob")), std::optional<uint32_t>(1));
  EXPECT_NE(ds.info.provenance.find("pseudonymised"), std::string::npos);
  EXPECT_EQ(ds.items.Name(0), "i0");
  // Another key, other pseudonyms: without the key a pseudonym cannot be recomputed.
  SecretKey other;
  other.bytes.fill(8);
  EXPECT_NE(UserPseudonym(other, "bob"), UserPseudonym(key, "bob"));
}

}  // namespace
}  // namespace adrec::data
