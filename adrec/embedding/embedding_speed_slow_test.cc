// Speed of a sparse training step (printed, not asserted; DESIGN.md: figures are ratios against
// a reference run in the same process): 4096 samples × 26 categorical fields on 26 hashed tables
// of 1M rows × 16, Forward + backward(sum) + Step, against the PyTorch-eager way of doing the
// same (torch::embedding with sparse gradients + torch::optim on the full weights).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <random>

#include "adrec/embedding/embedding.h"

namespace adrec::embedding {
namespace {

constexpr int kFields = 26, kDim = 16;
constexpr int64_t kRows = 1'000'000, kBatch = 4096;
constexpr int kWarmup = 3, kSteps = 20;

using Clock = std::chrono::steady_clock;
double Ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

// Power-law IDs (log-uniform over 10M values), as click logs: some values repeat in a batch.
std::vector<data::Batch> MakeBatches(int n) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(0, std::log(1e7));
  std::vector<data::Batch> batches(n);
  for (data::Batch& b : batches) {
    b.size = kBatch;
    b.sparse.resize(kFields);
    for (auto& f : b.sparse) {
      for (int64_t i = 0; i < kBatch; ++i) {
        f.ids.push_back(static_cast<int64_t>(std::exp(u(rng))));
        f.offsets.push_back(i);
      }
      f.offsets.push_back(kBatch);
    }
  }
  return batches;
}

struct Timing {
  double forward = 0, backward = 0, step = 0;
  double total() const { return forward + backward + step; }
};

void Sync(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

Timing RunAdrec(const std::string& opt, const std::vector<data::Batch>& batches, torch::Device device) {
  data::FeatureSpec spec;
  for (int f = 0; f < kFields; ++f) {
    data::TableSpec t;
    t.name = "t";
    t.name += std::to_string(f);  // not "t" + ...: GCC 12 reports a false overflow in that insert
    t.kind = data::TableKind::kHashed;
    t.rows = kRows;
    t.dim = kDim;
    spec.tables.push_back(t);
    data::FieldSpec field;
    field.name = "f";
    field.name += std::to_string(f);
    field.table = t.name;
    spec.fields.push_back(field);
  }
  CollectionOptions o;
  o.table.optimizer.kind = opt;
  o.table.device = device;
  auto c = EmbeddingCollection::Create(spec, o).value();
  Timing t;
  for (int s = 0; s < kWarmup + kSteps; ++s) {
    const data::Batch& batch = batches[s % batches.size()];
    Sync(device);
    auto t0 = Clock::now();
    auto lookup = c->Forward(batch, true, s);
    torch::Tensor loss = torch::stack(lookup.input.sparse).sum();
    Sync(device);
    auto t1 = Clock::now();
    loss.backward();
    Sync(device);
    auto t2 = Clock::now();
    c->Step(lookup, s);
    Sync(device);
    auto t3 = Clock::now();
    if (s >= kWarmup) {
      t.forward += Ms(t0, t1) / kSteps;
      t.backward += Ms(t1, t2) / kSteps;
      t.step += Ms(t2, t3) / kSteps;
    }
  }
  return t;
}

// What a PyTorch user writes: one nn.Embedding(sparse=True) per field and torch.optim on the
// weights. Rows are given precomputed (hashing is left out of this side's time).
Timing RunEager(const std::string& opt, const std::vector<data::Batch>& batches, torch::Device device) {
  std::vector<torch::Tensor> weights;
  for (int f = 0; f < kFields; ++f) {
    weights.push_back((torch::randn({kRows, kDim}) * 0.01).to(device).requires_grad_(true));
  }
  std::vector<std::vector<torch::Tensor>> rows(batches.size());
  for (size_t b = 0; b < batches.size(); ++b) {
    for (int f = 0; f < kFields; ++f) {
      rows[b].push_back(torch::tensor(batches[b].sparse[f].ids, torch::kLong).remainder_(kRows).to(device));
    }
  }
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (opt == "sgd") optimizer = std::make_unique<torch::optim::SGD>(weights, torch::optim::SGDOptions(0.05));
  else optimizer = std::make_unique<torch::optim::Adagrad>(weights, torch::optim::AdagradOptions(0.05));
  Timing t;
  for (int s = 0; s < kWarmup + kSteps; ++s) {
    const auto& idx = rows[s % batches.size()];
    Sync(device);
    auto t0 = Clock::now();
    optimizer->zero_grad();
    std::vector<torch::Tensor> outs;
    for (int f = 0; f < kFields; ++f) outs.push_back(torch::embedding(weights[f], idx[f], -1, false, /*sparse=*/true));
    torch::Tensor loss = torch::stack(outs).sum();
    Sync(device);
    auto t1 = Clock::now();
    loss.backward();
    Sync(device);
    auto t2 = Clock::now();
    optimizer->step();
    Sync(device);
    auto t3 = Clock::now();
    if (s >= kWarmup) {
      t.forward += Ms(t0, t1) / kSteps;
      t.backward += Ms(t1, t2) / kSteps;
      t.step += Ms(t2, t3) / kSteps;
    }
  }
  return t;
}

void Compare(torch::Device device) {
  std::vector<data::Batch> batches = MakeBatches(4);
  std::printf("[ speed ] %s: %d fields x %lld samples, %d hashed tables of %lld x %d, %d torch threads; ms per step\n",
              device.str().c_str(), kFields, static_cast<long long>(kBatch), kFields, static_cast<long long>(kRows),
              kDim, at::get_num_threads());
  for (const std::string opt : {"sgd", "adagrad"}) {
    Timing a = RunAdrec(opt, batches, device);
    Timing e;
    std::string eager_note;
    try {
      e = RunEager(opt, batches, device);
    } catch (const c10::Error& err) {
      eager_note = std::string(" (torch eager failed: ") + err.what_without_backtrace() + ")";
    }
    std::printf("[ speed ] %s %-8s adrec %7.2f (lookup %.2f, backward %.2f, step %.2f) | torch eager %7.2f "
                "(lookup %.2f, backward %.2f, step %.2f) | eager/adrec %.1fx%s\n",
                device.str().c_str(), opt.c_str(), a.total(), a.forward, a.backward, a.step, e.total(), e.forward,
                e.backward, e.step, e.total() / a.total(), eager_note.c_str());
    EXPECT_GT(a.total(), 0);
  }
}

TEST(EmbeddingSpeed, SparseStepAgainstTorchEagerCpu) { Compare(torch::kCPU); }

TEST(EmbeddingSpeed, SparseStepAgainstTorchEagerCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  Compare(torch::kCUDA);
}

}  // namespace
}  // namespace adrec::embedding
