// Federated averaging for the ranking trainer (McMahan et al. 2017), simulated in one process:
// the train part's users are dealt to K clients; each round, every client (or a Poisson sample
// of them) trains the global model on its own samples for a few local epochs and sends back
// its change, masked by secure_aggregation.h so the server learns only the sum; the server
// moves the global model by the average. With a DP budget the clients clip their change and
// add their share of Gaussian noise before masking (DP-FedAvg, McMahan et al. 2018): ε is then
// per client, over everything it holds. This header holds the plain parts: settings, the
// partition and the clipping; the round itself is the ranking trainer's.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "adrec/core/status.h"

namespace adrec {
class Config;
}

namespace adrec::train {

// [train] federated_clients, local_epochs, client_fraction, server_lr, secure_aggregation,
// secagg_neighbours (train.epochs counts rounds). `adrec train --federated-clients K`.
struct FederatedOptions {
  int clients = 0;               // K; 0 = centralised training
  int local_epochs = 1;          // passes over its own samples a client makes per round
  double client_fraction = 1.0;  // each client takes part in a round with this probability
  double server_lr = 1.0;        // the global model moves by server_lr × the average change
  bool secure_aggregation = true;
  int secagg_neighbours = 0;     // masks per client (0 = every other client of the round)
  bool enabled() const { return clients > 0; }
};
// Reads the keys (an absent key keeps the default); InvalidArgument names a bad value.
Status ReadFederatedOptions(Config& cfg, FederatedOptions* options);

// Users dealt to clients: shuffled by `seed`, then round-robin, so client sizes differ by at
// most one user. [num_users] → client.
std::vector<int> ClientOfUser(uint32_t num_users, int clients, uint64_t seed);

// Each client's train samples (indices into `sample_user`, ascending), a sample going with its
// user. FailedPrecondition names a client that holds no sample, and how many clients the data
// has room for.
StatusOr<std::vector<std::vector<uint64_t>>> ClientSamples(std::span<const uint32_t> sample_user, uint32_t num_users,
                                                           int clients, uint64_t seed);

// Scales `v` to L2 norm at most `clip`; returns its norm before.
double ClipToNorm(std::span<float> v, double clip);

// Adds N(0, stddev²) to every value, from a generator seeded by `seed`.
void AddGaussianNoise(std::span<float> v, double stddev, uint64_t seed);

}  // namespace adrec::train
