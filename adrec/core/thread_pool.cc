#include "adrec/core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <memory>

namespace adrec {

ThreadPool::ThreadPool(size_t threads) {
  if (threads == 0) threads = std::max<size_t>(1, std::thread::hardware_concurrency());
  workers_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::Enqueue(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push(std::move(job));
  }
  cv_.notify_one();
}

void ThreadPool::WorkerLoop() {
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping and drained
      job = std::move(jobs_.front());
      jobs_.pop();
    }
    job();
  }
}

void ThreadPool::ParallelFor(size_t n, const std::function<void(size_t, size_t)>& fn, size_t min_chunk) {
  if (n == 0) return;
  const size_t chunks = std::min(size() + 1, std::max<size_t>(1, n / std::max<size_t>(1, min_chunk)));
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  // Chunks are claimed from a shared counter by the caller and by helper jobs. The caller waits
  // for the chunks to be done, never for a helper job to start: inside a worker (nested
  // ParallelFor) every worker may be busy, and the caller then simply does all chunks itself.
  // Helper jobs that start late find nothing to claim and touch only the shared state.
  struct State {
    std::atomic<size_t> next{0};
    std::atomic<size_t> done{0};
    size_t chunks = 0, step = 0, n = 0;
    const std::function<void(size_t, size_t)>* fn = nullptr;
    std::mutex mu;
    std::condition_variable cv;
  };
  auto st = std::make_shared<State>();
  st->chunks = chunks;
  st->step = (n + chunks - 1) / chunks;
  st->n = n;
  st->fn = &fn;
  auto run = [st] {
    while (true) {
      const size_t c = st->next.fetch_add(1);
      if (c >= st->chunks) return;
      const size_t b = c * st->step, e = std::min(st->n, b + st->step);
      if (b < e) (*st->fn)(b, e);
      if (st->done.fetch_add(1) + 1 == st->chunks) {
        std::lock_guard<std::mutex> lock(st->mu);
        st->cv.notify_all();
      }
    }
  };
  for (size_t i = 0; i + 1 < chunks; ++i) Enqueue(run);
  run();
  std::unique_lock<std::mutex> lock(st->mu);
  st->cv.wait(lock, [&] { return st->done.load() == st->chunks; });
}

}  // namespace adrec
