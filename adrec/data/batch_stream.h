// Epochs of batches for training and evaluation, built ahead on a thread pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "adrec/data/batch.h"

namespace adrec::data {

struct BatchStreamOptions {
  size_t batch_size = 4096;
  bool shuffle = true;
  uint64_t seed = 42;
  bool drop_last = false;
  size_t prefetch = 4;   // batches built ahead on the pool
  size_t threads = 0;    // builder threads; 0 = hardware concurrency
};

// Epochs of batches, built ahead on a pool and handed out in a fixed order: the sequence of
// batches depends only on (seed, epoch), never on thread timing, so a resumed run sees the
// same batches.
class BatchStream {
 public:
  BatchStream(const Dataset& ds, const FeatureSpec& spec, const SampleSet& samples, BatchStreamOptions options);
  ~BatchStream();
  // Starts epoch `epoch` (shuffled with seed and epoch), skipping its first `skip` batches.
  void StartEpoch(uint64_t epoch, size_t skip = 0);
  // Next batch of the epoch; false at its end.
  bool Next(Batch* out);
  size_t batches_per_epoch() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace adrec::data
