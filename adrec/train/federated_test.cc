#include "adrec/train/federated.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "adrec/core/config.h"
#include "adrec/train/secure_aggregation.h"

namespace adrec::train {
namespace {

std::vector<std::vector<float>> RandomUpdates(int clients, size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> z(0.f, 0.3f);
  std::vector<std::vector<float>> out(static_cast<size_t>(clients), std::vector<float>(size));
  for (auto& u : out) {
    for (float& x : u) x = z(rng);
  }
  return out;
}

struct Round {
  std::vector<MaskingKeys> keys;
  std::vector<std::array<uint8_t, 32>> publics;
};
Round NewRound(int clients) {
  Round r;
  for (int c = 0; c < clients; ++c) {
    StatusOr<MaskingKeys> k = NewMaskingKeys();
    EXPECT_TRUE(k.ok()) << k.status().ToString();
    r.keys.push_back(*k);
    r.publics.push_back(k->public_key);
  }
  return r;
}

// Every client's masked update, with the neighbours of `neighbours`.
std::vector<std::vector<uint64_t>> MaskAll(const std::vector<std::vector<float>>& updates, const Round& r, int neighbours,
                                           uint64_t round) {
  const int m = static_cast<int>(updates.size());
  const auto near = MaskingNeighbours(m, neighbours, round);
  std::vector<std::vector<uint64_t>> out;
  for (int c = 0; c < m; ++c) {
    StatusOr<std::vector<uint64_t>> masked = MaskUpdate(updates[c], c, r.keys[c], r.publics, near[c], round, {});
    EXPECT_TRUE(masked.ok()) << masked.status().ToString();
    out.push_back(*masked);
  }
  return out;
}

// The plain sum of the updates' fixed-point codes: what a server without masks would get.
std::vector<float> PlainSum(const std::vector<std::vector<float>>& updates, const Round& r) {
  MaskedSum sum(updates[0].size());
  for (size_t c = 0; c < updates.size(); ++c) {
    StatusOr<std::vector<uint64_t>> codes = MaskUpdate(updates[c], static_cast<int>(c), r.keys[c], r.publics, {}, 0, {});
    EXPECT_TRUE(codes.ok());
    EXPECT_TRUE(sum.Add(*codes).ok());
  }
  return sum.Decode(SecureAggregationOptions{}.fraction_bits);
}

TEST(SecureAggregation, MasksCancelExactlyInTheSum) {
  const int m = 7;
  const auto updates = RandomUpdates(m, 1000, 1);
  const Round r = NewRound(m);
  const std::vector<float> plain = PlainSum(updates, r);
  for (int neighbours : {0, 2, 4}) {
    MaskedSum sum(1000);
    for (const auto& masked : MaskAll(updates, r, neighbours, 5)) ASSERT_TRUE(sum.Add(masked).ok());
    const std::vector<float> decoded = sum.Decode(SecureAggregationOptions{}.fraction_bits);
    EXPECT_EQ(decoded, plain) << "neighbours " << neighbours << ": the masks must cancel to the bit";
  }
  // The codes are the values to 2^-24: the sum is the float sum to m · 2^-25.
  for (size_t i = 0; i < plain.size(); ++i) {
    double want = 0;
    for (const auto& u : updates) want += u[i];
    ASSERT_NEAR(plain[i], want, m * std::ldexp(1.0, -25) + 1e-6) << i;
  }
}

TEST(SecureAggregation, OneMaskedUpdateTellsNothingAndOthersKeysGiveTheSameSum) {
  const int m = 5;
  const auto updates = RandomUpdates(m, 4000, 2);
  const Round a = NewRound(m), b = NewRound(m);
  const auto masked_a = MaskAll(updates, a, 0, 9), masked_b = MaskAll(updates, b, 0, 9);
  // Client 0's masked codes against its plain codes: every coordinate differs, and read as
  // fixed point they are spread over the whole range instead of within ±2.
  StatusOr<std::vector<uint64_t>> plain0 = MaskUpdate(updates[0], 0, a.keys[0], a.publics, {}, 9, {});
  ASSERT_TRUE(plain0.ok());
  size_t same = 0, large = 0;
  for (size_t i = 0; i < plain0->size(); ++i) {
    same += (*plain0)[i] == masked_a[0][i];
    large += std::fabs(static_cast<double>(static_cast<int64_t>(masked_a[0][i]))) > std::ldexp(1.0, 40);
  }
  EXPECT_EQ(same, 0u);
  EXPECT_GT(large, 3900u) << "a masked update must look uniform over 2^64";
  // New keys give new masks, and the same sum.
  EXPECT_NE(masked_a[0], masked_b[0]);
  MaskedSum sa(4000), sb(4000);
  for (int c = 0; c < m; ++c) {
    ASSERT_TRUE(sa.Add(masked_a[c]).ok());
    ASSERT_TRUE(sb.Add(masked_b[c]).ok());
  }
  EXPECT_EQ(sa.Decode(24), sb.Decode(24));
  // Another round's masks differ even with the same keys.
  EXPECT_NE(MaskAll(updates, a, 0, 10)[0], masked_a[0]);
}

TEST(SecureAggregation, AMissingClientLeavesMasksThatDoNotCancel) {
  const int m = 4;
  const auto updates = RandomUpdates(m, 500, 3);
  const Round r = NewRound(m);
  const auto masked = MaskAll(updates, r, 0, 1);
  MaskedSum sum(500);
  for (int c = 0; c < m - 1; ++c) ASSERT_TRUE(sum.Add(masked[c]).ok());
  const std::vector<float> decoded = sum.Decode(24);
  size_t off = 0;
  for (size_t i = 0; i < decoded.size(); ++i) {
    double want = 0;
    for (int c = 0; c < m - 1; ++c) want += updates[c][i];
    off += std::fabs(decoded[i] - want) > 1.0;
  }
  EXPECT_GT(off, 490u) << "without the last client the sum is garbage: no dropout recovery";
}

TEST(SecureAggregation, NeighboursAreSymmetricWithTheDegreeAsked) {
  for (int clients : {2, 3, 10, 33}) {
    for (int k : {0, 1, 2, 4, 8}) {
      const auto near = MaskingNeighbours(clients, k, 77);
      ASSERT_EQ(near.size(), static_cast<size_t>(clients));
      for (int c = 0; c < clients; ++c) {
        const int want = (k == 0 || k >= clients - 1) ? clients - 1 : std::min(clients - 1, 2 * ((k + 1) / 2));
        EXPECT_EQ(static_cast<int>(near[c].size()), want) << clients << " clients, k " << k;
        for (int o : near[c]) {
          EXPECT_NE(o, c);
          EXPECT_TRUE(std::count(near[o].begin(), near[o].end(), c)) << c << " masks with " << o << " but not back";
        }
      }
    }
  }
  EXPECT_NE(MaskingNeighbours(33, 4, 1), MaskingNeighbours(33, 4, 2)) << "the ring is reshuffled each round";
}

TEST(SecureAggregation, BadInputIsAnErrorThatSaysWhat) {
  const Round r = NewRound(3);
  std::vector<float> u(10, 0.5f);
  u[7] = 1e30f;
  StatusOr<std::vector<uint64_t>> big = MaskUpdate(u, 0, r.keys[0], r.publics, {1, 2}, 0, {});
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(big.status().message().find("coordinate 7"), std::string::npos) << big.status().ToString();
  u[7] = std::nanf("");
  EXPECT_EQ(MaskUpdate(u, 0, r.keys[0], r.publics, {}, 0, {}).status().code(), StatusCode::kOutOfRange);
  u[7] = 0;
  EXPECT_FALSE(MaskUpdate(u, 0, r.keys[0], r.publics, {0}, 0, {}).ok()) << "a client is not its own neighbour";
  EXPECT_FALSE(MaskUpdate(u, 0, r.keys[0], r.publics, {3}, 0, {}).ok());
  EXPECT_FALSE(MaskUpdate(u, 3, r.keys[0], r.publics, {}, 0, {}).ok());
  MaskedSum sum(10);
  EXPECT_EQ(sum.Add(std::vector<uint64_t>(9)).code(), StatusCode::kInvalidArgument);
}

TEST(Federated, UsersAreDealtEvenlyAndEachSampleGoesWithItsUser) {
  const std::vector<int> of = ClientOfUser(103, 10, 5);
  std::vector<int> count(10, 0);
  for (int c : of) ++count[c];
  EXPECT_EQ(*std::max_element(count.begin(), count.end()) - *std::min_element(count.begin(), count.end()), 1);
  EXPECT_EQ(of, ClientOfUser(103, 10, 5));
  EXPECT_NE(of, ClientOfUser(103, 10, 6));
  std::vector<uint32_t> sample_user;
  for (uint32_t s = 0; s < 1000; ++s) sample_user.push_back((s * 37) % 103);
  StatusOr<std::vector<std::vector<uint64_t>>> parts = ClientSamples(sample_user, 103, 10, 5);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  std::set<uint64_t> all;
  for (int c = 0; c < 10; ++c) {
    EXPECT_TRUE(std::is_sorted((*parts)[c].begin(), (*parts)[c].end()));
    for (uint64_t s : (*parts)[c]) {
      EXPECT_EQ(of[sample_user[s]], c);
      all.insert(s);
    }
  }
  EXPECT_EQ(all.size(), 1000u);
}

TEST(Federated, AClientWithNoDataIsAnErrorNamingIt) {
  // 20 users, only 3 with samples: 10 clients leave some with nothing.
  const std::vector<uint32_t> sample_user = {0, 0, 1, 2, 2, 2};
  StatusOr<std::vector<std::vector<uint64_t>>> parts = ClientSamples(sample_user, 20, 10, 1);
  ASSERT_FALSE(parts.ok());
  EXPECT_EQ(parts.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(parts.status().message().find("holds no train sample"), std::string::npos) << parts.status().ToString();
  EXPECT_NE(parts.status().message().find("3 users with samples"), std::string::npos) << parts.status().ToString();
  EXPECT_TRUE(ClientSamples(sample_user, 20, 1, 1).ok());
  EXPECT_FALSE(ClientSamples(std::vector<uint32_t>{25}, 20, 1, 1).ok()) << "a user past the dataset";
}

TEST(Federated, ClippingAndNoise) {
  std::vector<float> v = {3, 4};
  EXPECT_DOUBLE_EQ(ClipToNorm(v, 1.0), 5.0);
  EXPECT_NEAR(v[0], 0.6f, 1e-6);
  EXPECT_NEAR(v[1], 0.8f, 1e-6);
  EXPECT_NEAR(ClipToNorm(v, 2.0), 1.0, 1e-6) << "within the clip nothing changes";
  EXPECT_NEAR(v[0], 0.6f, 1e-6);
  std::vector<float> a(20000, 0.f), b(20000, 0.f);
  AddGaussianNoise(a, 0.5, 3);
  AddGaussianNoise(b, 0.5, 3);
  EXPECT_EQ(a, b);
  double sq = 0;
  for (float x : a) sq += x * x;
  EXPECT_NEAR(std::sqrt(sq / a.size()), 0.5, 0.01);
}

TEST(Federated, SettingsAreCheckedByName) {
  for (const char* bad : {"federated_clients = -1", "local_epochs = 0", "client_fraction = 0", "client_fraction = 1.5",
                          "server_lr = 0", "secagg_neighbours = -2"}) {
    StatusOr<Config> cfg = Config::Parse(std::string("[train]\n") + bad + "\n", "t.toml");
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    FederatedOptions o;
    const Status s = ReadFederatedOptions(*cfg, &o);
    EXPECT_FALSE(s.ok()) << bad;
    const std::string key = std::string(bad).substr(0, std::string(bad).find(' '));
    EXPECT_NE(s.message().find("train." + key), std::string::npos) << s.ToString();
  }
  StatusOr<Config> cfg = Config::Parse("[train]\nfederated_clients = 8\nlocal_epochs = 2\n", "t.toml");
  ASSERT_TRUE(cfg.ok());
  FederatedOptions o;
  ASSERT_TRUE(ReadFederatedOptions(*cfg, &o).ok());
  EXPECT_TRUE(o.enabled());
  EXPECT_EQ(o.local_epochs, 2);
}

}  // namespace
}  // namespace adrec::train
