#include "adrec/train/secure_aggregation.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <set>
#include <string>

namespace adrec::train {
namespace {

constexpr char kMaskContext[] = "adrec secure aggregation mask";

// The pair's seed for one round: BLAKE2b keyed by the X25519 shared point, over both public
// keys in a fixed order and the round, so each round's masks are fresh and both ends agree.
StatusOr<std::array<uint8_t, randombytes_SEEDBYTES>> PairSeed(const MaskingKeys& mine, const std::array<uint8_t, 32>& theirs,
                                                              uint64_t round) {
  std::array<uint8_t, crypto_scalarmult_BYTES> shared{};
  if (crypto_scalarmult(shared.data(), mine.secret_key.data(), theirs.data()) != 0) {
    return InvalidArgumentError("secure aggregation: a client's public key is not a valid X25519 point");
  }
  const bool first = std::memcmp(mine.public_key.data(), theirs.data(), 32) < 0;
  const std::array<uint8_t, 32>& lo = first ? mine.public_key : theirs;
  const std::array<uint8_t, 32>& hi = first ? theirs : mine.public_key;
  crypto_generichash_state st;
  crypto_generichash_init(&st, shared.data(), shared.size(), randombytes_SEEDBYTES);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(kMaskContext), sizeof(kMaskContext));
  crypto_generichash_update(&st, lo.data(), lo.size());
  crypto_generichash_update(&st, hi.data(), hi.size());
  uint8_t r[8];
  for (int i = 0; i < 8; ++i) r[i] = static_cast<uint8_t>(round >> (8 * i));
  crypto_generichash_update(&st, r, sizeof(r));
  std::array<uint8_t, randombytes_SEEDBYTES> seed{};
  crypto_generichash_final(&st, seed.data(), seed.size());
  sodium_memzero(shared.data(), shared.size());
  return seed;
}

}  // namespace

StatusOr<MaskingKeys> NewMaskingKeys() {
  if (sodium_init() < 0) return InternalError("libsodium could not initialise (no entropy source)");
  MaskingKeys k;
  randombytes_buf(k.secret_key.data(), k.secret_key.size());
  crypto_scalarmult_base(k.public_key.data(), k.secret_key.data());
  return k;
}

std::vector<std::vector<int>> MaskingNeighbours(int clients, int neighbours, uint64_t round_seed) {
  std::vector<std::vector<int>> out(static_cast<size_t>(std::max(0, clients)));
  if (clients < 2) return out;
  if (neighbours <= 0 || neighbours >= clients - 1) {
    for (int c = 0; c < clients; ++c) {
      for (int o = 0; o < clients; ++o) {
        if (o != c) out[c].push_back(o);
      }
    }
    return out;
  }
  std::vector<int> ring(static_cast<size_t>(clients));
  std::iota(ring.begin(), ring.end(), 0);
  std::mt19937_64 rng(round_seed);
  std::shuffle(ring.begin(), ring.end(), rng);
  const int reach = (neighbours + 1) / 2;  // each side of the ring
  for (int p = 0; p < clients; ++p) {
    std::set<int> near;
    for (int d = 1; d <= reach; ++d) {
      near.insert(ring[(p + d) % clients]);
      near.insert(ring[(p - d + clients) % clients]);
    }
    out[ring[p]].assign(near.begin(), near.end());
  }
  return out;
}

StatusOr<std::vector<uint64_t>> MaskUpdate(std::span<const float> update, int me, const MaskingKeys& mine,
                                           std::span<const std::array<uint8_t, 32>> public_keys,
                                           const std::vector<int>& neighbours, uint64_t round,
                                           const SecureAggregationOptions& options) {
  if (sodium_init() < 0) return InternalError("libsodium could not initialise (no entropy source)");
  const int clients = static_cast<int>(public_keys.size());
  if (me < 0 || me >= clients) return InvalidArgumentError("secure aggregation: client " + std::to_string(me) + " is not in the round");
  if (options.fraction_bits < 0 || options.fraction_bits > 40) {
    return InvalidArgumentError("secure aggregation: fraction_bits must be in [0, 40]");
  }
  const double scale = std::ldexp(1.0, options.fraction_bits);
  // |code| below 2^63 / clients: the sum of every client's code cannot wrap around.
  const double limit = std::ldexp(1.0, 63) / std::max(1, clients);
  std::vector<uint64_t> out(update.size());
  for (size_t i = 0; i < update.size(); ++i) {
    const double code = std::nearbyint(static_cast<double>(update[i]) * scale);
    if (!(std::fabs(code) < limit)) {
      return OutOfRangeError("secure aggregation: coordinate " + std::to_string(i) + " of client " + std::to_string(me) +
                             "'s update is " + std::to_string(update[i]) + ", outside the fixed-point range of ±" +
                             std::to_string(limit / scale) + " for " + std::to_string(clients) + " clients");
    }
    out[i] = static_cast<uint64_t>(static_cast<int64_t>(code));
  }
  std::vector<uint64_t> mask(update.size());
  for (int other : neighbours) {
    if (other == me || other < 0 || other >= clients) {
      return InvalidArgumentError("secure aggregation: client " + std::to_string(me) + " has neighbour " +
                                  std::to_string(other) + ", not another client of the round");
    }
    ADREC_ASSIGN_OR_RETURN(auto seed, PairSeed(mine, public_keys[static_cast<size_t>(other)], round));
    randombytes_buf_deterministic(mask.data(), mask.size() * sizeof(uint64_t), seed.data());
    sodium_memzero(seed.data(), seed.size());
    // The lower index adds the pair's mask and the higher one subtracts it (unsigned wrap-around).
    if (me < other) {
      for (size_t i = 0; i < out.size(); ++i) out[i] += mask[i];
    } else {
      for (size_t i = 0; i < out.size(); ++i) out[i] -= mask[i];
    }
  }
  return out;
}

Status MaskedSum::Add(std::span<const uint64_t> masked) {
  if (masked.size() != sum_.size()) {
    return InvalidArgumentError("secure aggregation: a masked update of " + std::to_string(masked.size()) +
                                " values, the sum has " + std::to_string(sum_.size()));
  }
  for (size_t i = 0; i < sum_.size(); ++i) sum_[i] += masked[i];
  return Status::Ok();
}

std::vector<float> MaskedSum::Decode(int fraction_bits) const {
  const double scale = std::ldexp(1.0, -fraction_bits);
  std::vector<float> out(sum_.size());
  for (size_t i = 0; i < sum_.size(); ++i) out[i] = static_cast<float>(static_cast<double>(static_cast<int64_t>(sum_[i])) * scale);
  return out;
}

}  // namespace adrec::train
