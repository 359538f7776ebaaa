// Training over several processes with torch.distributed (c10d): the process group comes from
// the launcher's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, as
// torchrun, Slurm or mpirun wrappers set it), NCCL on CUDA, Gloo on CPU. Rank 0 serves the
// TCPStore the others rendezvous at. Every collective returns a Status: a rank that died or
// stopped answering turns into an IoError on the others (at once, or after the timeout), never a
// hang.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <torch/types.h>

#include "adrec/core/status.h"
#include "adrec/embedding/embedding.h"

namespace adrec::train {

// The launcher's variables. WORLD_SIZE unset (or 1 with RANK unset or 0): one process.
struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};
// nullopt for one process; InvalidArgument naming the variable that is missing or malformed
// (RANK outside [0, WORLD_SIZE), a port outside [1, 65535], …).
StatusOr<std::optional<DistEnv>> ReadDistEnv();

struct DistOptions {
  // How long a collective (and the rendezvous) waits for the other ranks before failing.
  std::chrono::milliseconds timeout = std::chrono::seconds(300);
};

class Distributed {
 public:
  // Rendezvous at MASTER_ADDR:MASTER_PORT and the backend for `device` (nccl for CUDA, gloo
  // for CPU). IoError naming the address when the other ranks do not come in time.
  static StatusOr<std::unique_ptr<Distributed>> Init(const DistEnv& env, const torch::Device& device,
                                                     const DistOptions& options = {});
  ~Distributed();

  int rank() const;
  int world_size() const;
  std::string backend() const;  // "gloo" | "nccl"
  const torch::Device& device() const;

  // FailedPrecondition naming `what` and the ranks that disagree when `value` is not the same
  // on every rank (configs, data fingerprints, settings): a mismatch is caught at the start.
  Status CheckSame(std::string_view what, const std::string& value);

  // Sums in place over the ranks (each tensor on device()).
  Status AllReduceSum(std::vector<torch::Tensor>& tensors);
  // Rank `root`'s tensors everywhere.
  Status Broadcast(std::vector<torch::Tensor>& tensors, int root = 0);
  // Every rank's `input` (same shape everywhere) stacked: [world, ...].
  StatusOr<torch::Tensor> AllGather(const torch::Tensor& input);
  // Rows of `input` go to ranks in consecutive runs of `send_counts[r]` rows (dimension 0); the
  // result holds what each rank sent to this one, rank by rank, with `recv_counts[r]` rows from r.
  StatusOr<torch::Tensor> AllToAll(const torch::Tensor& input, const std::vector<int64_t>& send_counts,
                                   const std::vector<int64_t>& recv_counts);
  // How many rows each rank will send to this one, from what this one sends to each.
  StatusOr<std::vector<int64_t>> ExchangeCounts(const std::vector<int64_t>& send_counts);
  Status Barrier();

  // A sum started in the background (a gradient bucket while backward goes on).
  class Pending {
   public:
    Pending();
    ~Pending();
    Pending(Pending&&) noexcept;
    Pending& operator=(Pending&&) noexcept;
    // Waits for it; IoError as the synchronous calls.
    Status Wait();

   private:
    friend class Distributed;
    struct Impl;
    std::unique_ptr<Impl> impl_;
  };
  Pending AllReduceSumAsync(torch::Tensor tensor);

  // Seconds spent in collectives (waiting included) since the last call: a step's
  // communication share.
  double TakeCommSeconds();

 private:
  Distributed();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The embedding collection's row exchange (embedding::ShardExchange) over a process group; a
// failed collective throws std::runtime_error with the Status message.
std::unique_ptr<embedding::ShardExchange> MakeShardExchange(Distributed& dist);

// Data parallel for dense parameters: gradients are summed over the ranks in buckets of about
// `bucket_bytes`, each started (asynchronously) as soon as backward has produced all of its
// gradients — in a fixed bucket order, so every rank starts the same collectives in the same
// order — and divided by the world size, as DistributedDataParallel's reducer does.
class GradientSync {
 public:
  GradientSync(Distributed& dist, std::vector<torch::Tensor> params, int64_t bucket_bytes = 8 << 20);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Call after backward: waits for every bucket (a parameter no gradient reached counts as
  // zero) and writes the mean gradient into each parameter's grad.
  Status Finish();
  int64_t buckets() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace adrec::train
