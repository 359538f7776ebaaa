#include "adrec/train/federated.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>

#include "adrec/core/config.h"

namespace adrec::train {

Status ReadFederatedOptions(Config& cfg, FederatedOptions* o) {
  ADREC_RETURN_IF_ERROR(cfg.Get("train.federated_clients", &o->clients));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.local_epochs", &o->local_epochs));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.client_fraction", &o->client_fraction));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.server_lr", &o->server_lr));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.secure_aggregation", &o->secure_aggregation));
  ADREC_RETURN_IF_ERROR(cfg.Get("train.secagg_neighbours", &o->secagg_neighbours));
  const std::string src = cfg.source() + ": ";
  if (o->clients < 0) return InvalidArgumentError(src + "train.federated_clients must be >= 0 (0 = centralised)");
  if (o->local_epochs < 1) return InvalidArgumentError(src + "train.local_epochs must be >= 1");
  if (!(o->client_fraction > 0 && o->client_fraction <= 1)) {
    return InvalidArgumentError(src + "train.client_fraction must be in (0, 1]");
  }
  if (!(o->server_lr > 0) || !std::isfinite(o->server_lr)) return InvalidArgumentError(src + "train.server_lr must be > 0");
  if (o->secagg_neighbours < 0) return InvalidArgumentError(src + "train.secagg_neighbours must be >= 0 (0 = every other client)");
  return Status::Ok();
}

std::vector<int> ClientOfUser(uint32_t num_users, int clients, uint64_t seed) {
  std::vector<uint32_t> order(num_users);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937_64 rng(seed * 0xA0761D6478BD642Full + 0xE7037ED1A0B428DBull);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<int> out(num_users, 0);
  for (size_t i = 0; i < order.size(); ++i) out[order[i]] = static_cast<int>(i % static_cast<size_t>(std::max(1, clients)));
  return out;
}

StatusOr<std::vector<std::vector<uint64_t>>> ClientSamples(std::span<const uint32_t> sample_user, uint32_t num_users,
                                                           int clients, uint64_t seed) {
  if (clients < 1) return InvalidArgumentError("federated averaging needs at least one client");
  const std::vector<int> of = ClientOfUser(num_users, clients, seed);
  std::vector<std::vector<uint64_t>> out(static_cast<size_t>(clients));
  std::vector<char> has_user(num_users, 0);
  for (size_t s = 0; s < sample_user.size(); ++s) {
    const uint32_t u = sample_user[s];
    if (u >= num_users) return InvalidArgumentError("sample " + std::to_string(s) + " has user " + std::to_string(u) + ", past the dataset's users");
    out[static_cast<size_t>(of[u])].push_back(s);
    has_user[u] = 1;
  }
  for (int c = 0; c < clients; ++c) {
    if (!out[c].empty()) continue;
    const size_t users_with_data = static_cast<size_t>(std::count(has_user.begin(), has_user.end(), 1));
    size_t dealt = 0;
    for (uint32_t u = 0; u < num_users; ++u) dealt += of[u] == c;
    return FailedPreconditionError("--federated-clients " + std::to_string(clients) + ": client " + std::to_string(c) +
                                   " holds no train sample (its " + std::to_string(dealt) +
                                   " users have none); the train part has " + std::to_string(users_with_data) +
                                   " users with samples: use fewer clients");
  }
  return out;
}

double ClipToNorm(std::span<float> v, double clip) {
  double sq = 0;
  for (float x : v) sq += static_cast<double>(x) * x;
  const double norm = std::sqrt(sq);
  if (norm > clip && norm > 0) {
    const float f = static_cast<float>(clip / norm);
    for (float& x : v) x *= f;
  }
  return norm;
}

void AddGaussianNoise(std::span<float> v, double stddev, uint64_t seed) {
  if (!(stddev > 0)) return;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> z(0.0, stddev);
  for (float& x : v) x += static_cast<float>(z(rng));
}

}  // namespace adrec::train
