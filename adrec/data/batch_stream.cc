// BatchStream: batches of a shuffled epoch built ahead on a pool. Each batch is a pure function
// of (seed, epoch, batch index), so thread timing only changes when a batch is ready, never
// what it holds.
#include "adrec/data/batch_stream.h"

#include <algorithm>
#include <atomic>
#include <future>
#include <numeric>
#include <random>

#include "adrec/core/hash.h"
#include "adrec/core/thread_pool.h"

namespace adrec::data {

namespace {

// Fisher-Yates with our own bounded draw: std::shuffle's use of the engine differs between
// standard libraries, and a resumed run on another machine must see the same order.
void SeededPermutation(uint64_t seed, uint64_t epoch, std::vector<uint64_t>* order) {
  std::iota(order->begin(), order->end(), uint64_t{0});
  std::mt19937_64 rng(HashCombine(HashId(seed), HashId(epoch, 0x65706f6368ULL)));
  for (size_t i = order->size(); i > 1; --i) {
    // Lemire's multiply-shift: an unbiased-enough draw in [0, i) without a division.
    const uint64_t j = static_cast<uint64_t>((static_cast<unsigned __int128>(rng()) * i) >> 64);
    std::swap((*order)[i - 1], (*order)[j]);
  }
}

}  // namespace

struct BatchStream::Impl {
  const Dataset& ds;
  const FeatureSpec& spec;
  const SampleSet& samples;
  BatchStreamOptions options;
  ThreadPool pool;

  std::vector<uint64_t> order;  // this epoch's sample order
  size_t num_batches = 0;       // of the epoch
  size_t next_submit = 0;       // next batch index to hand to the pool
  size_t next_return = 0;       // next batch index Next hands out
  bool started = false;
  std::atomic<bool> cancelled{false};

  // Ring of prefetch slots: batch i lives in slot i % slots.size(). Next swaps the slot's batch
  // with the caller's, so buffers circulate and steady state allocates nothing.
  struct Slot {
    Batch batch;
    std::future<void> ready;
  };
  std::vector<Slot> slots;

  Impl(const Dataset& d, const FeatureSpec& s, const SampleSet& ss, BatchStreamOptions o)
      : ds(d), spec(s), samples(ss), options(o), pool(o.threads) {
    options.batch_size = std::max<size_t>(1, options.batch_size);
    slots.resize(std::max<size_t>(1, options.prefetch));
    order.resize(samples.size());
  }

  ~Impl() {
    cancelled = true;  // batches not yet started are skipped; running ones finish
    WaitAll();
  }

  size_t BatchesPerEpoch() const {
    const size_t n = samples.size(), bs = options.batch_size;
    return options.drop_last ? n / bs : (n + bs - 1) / bs;
  }

  void WaitAll() {
    for (Slot& s : slots) {
      if (s.ready.valid()) s.ready.wait();
    }
  }

  void Submit() {
    const size_t i = next_submit++;
    Slot& slot = slots[i % slots.size()];
    const size_t begin = i * options.batch_size;
    const size_t end = std::min(order.size(), begin + options.batch_size);
    slot.ready = pool.Submit([this, &slot, begin, end] {
      if (cancelled) return;
      BuildBatch(ds, spec, samples, std::span<const uint64_t>(order).subspan(begin, end - begin), &slot.batch);
    });
  }

  void Start(uint64_t epoch, size_t skip) {
    WaitAll();  // in-flight batches read `order`
    for (Slot& s : slots) s.ready = {};
    if (options.shuffle) SeededPermutation(options.seed, epoch, &order);
    else std::iota(order.begin(), order.end(), uint64_t{0});
    num_batches = BatchesPerEpoch();
    next_submit = next_return = std::min(skip, num_batches);
    while (next_submit < num_batches && next_submit - next_return < slots.size()) Submit();
    started = true;
  }

  bool Next(Batch* out) {
    if (!started) Start(0, 0);
    if (next_return >= num_batches) return false;
    Slot& slot = slots[next_return % slots.size()];
    slot.ready.get();
    std::swap(slot.batch, *out);
    ++next_return;
    if (next_submit < num_batches) Submit();  // refills the slot just emptied
    return true;
  }
};

BatchStream::BatchStream(const Dataset& ds, const FeatureSpec& spec, const SampleSet& samples,
                         BatchStreamOptions options)
    : impl_(std::make_unique<Impl>(ds, spec, samples, options)) {}

BatchStream::~BatchStream() = default;

void BatchStream::StartEpoch(uint64_t epoch, size_t skip) { impl_->Start(epoch, skip); }

bool BatchStream::Next(Batch* out) { return impl_->Next(out); }

size_t BatchStream::batches_per_epoch() const { return impl_->BatchesPerEpoch(); }

}  // namespace adrec::data
