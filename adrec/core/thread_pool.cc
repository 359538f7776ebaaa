#include "adrec/core/thread_pool.h"

#include <algorithm>
#include <atomic>

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
  size_t chunks = std::min(size() + 1, std::max<size_t>(1, n / std::max<size_t>(1, min_chunk)));
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  size_t step = (n + chunks - 1) / chunks;
  std::atomic<size_t> next{0};
  // Chunks are claimed from a shared counter so the caller and the workers split the work.
  auto run = [&] {
    while (true) {
      size_t c = next.fetch_add(1);
      if (c >= chunks) return;
      size_t b = c * step, e = std::min(n, b + step);
      if (b < e) fn(b, e);
    }
  };
  std::vector<std::future<void>> helpers;
  helpers.reserve(chunks - 1);
  for (size_t i = 0; i + 1 < chunks; ++i) helpers.push_back(Submit(run));
  run();
  for (auto& f : helpers) f.get();
}

}  // namespace adrec
