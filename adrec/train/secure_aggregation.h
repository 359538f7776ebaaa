// Secure aggregation of federated updates with pairwise masks (Bonawitz et al. 2017, without
// the secret sharing that recovers dropped clients): each client encodes its update as fixed-
// point integers modulo 2^64 and adds, for every neighbour it shares a key with, a mask drawn
// from their X25519 shared secret — plus for one of the pair, minus for the other. One masked
// update is uniformly random to the server; their sum mod 2^64 is exactly the sum of the codes,
// because the masks cancel in integer arithmetic. The neighbours are every other client of the
// round, or each client's k nearest on a ring the round's seed shuffles (Bell et al. 2020): the
// masks still cancel, at O(k) instead of O(clients) mask streams per client. Plain vectors; no
// tensors.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "adrec/core/status.h"

namespace adrec::train {

// A client's X25519 key pair; the public half is what the server relays to the others.
struct MaskingKeys {
  std::array<uint8_t, 32> public_key{};
  std::array<uint8_t, 32> secret_key{};
};
// A fresh pair from the OS's CSPRNG: the sum does not depend on the keys, so runs stay
// reproducible with new keys every run.
StatusOr<MaskingKeys> NewMaskingKeys();

struct SecureAggregationOptions {
  int fraction_bits = 24;  // fixed point: a value x is sent as round(x · 2^fraction_bits)
  int neighbours = 0;      // masks per client; 0 or ≥ clients − 1 = every other client
};

// Who masks with whom in a round of `clients` participants: symmetric neighbour lists, each
// client's `neighbours` nearest on a ring shuffled by `round_seed` (every other client when
// neighbours is 0 or at least clients − 1).
std::vector<std::vector<int>> MaskingNeighbours(int clients, int neighbours, uint64_t round_seed);

// Client `me`'s masked update for `round`: its fixed-point codes plus the pairwise masks with
// `neighbours` (indices into `public_keys`, the round's participants). OutOfRange names the
// first coordinate whose code could make the sum of `clients` updates wrap around 2^64.
StatusOr<std::vector<uint64_t>> MaskUpdate(std::span<const float> update, int me, const MaskingKeys& mine,
                                           std::span<const std::array<uint8_t, 32>> public_keys,
                                           const std::vector<int>& neighbours, uint64_t round,
                                           const SecureAggregationOptions& options);

// The server's side: adds masked updates modulo 2^64 and decodes the sum.
class MaskedSum {
 public:
  explicit MaskedSum(size_t size) : sum_(size, 0) {}
  // InvalidArgument when the update's length is not the sum's.
  Status Add(std::span<const uint64_t> masked);
  // The sum of the updates added, exact to their fixed-point codes, once every client of the
  // round was added (missing clients leave masks that do not cancel).
  std::vector<float> Decode(int fraction_bits) const;

 private:
  std::vector<uint64_t> sum_;
};

}  // namespace adrec::train
