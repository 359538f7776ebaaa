#include "adrec/train/distributed.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>
#ifdef ADREC_HAVE_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <map>
#include <mutex>

namespace adrec::train {

namespace {

using Clock = std::chrono::steady_clock;

// The first line of a c10d error (its messages carry a C++ backtrace after it).
std::string FirstLine(const std::exception& e) {
  const auto* c10 = dynamic_cast<const c10::Error*>(&e);
  std::string what = c10 != nullptr ? c10->what_without_backtrace() : e.what();
  if (const size_t nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
  if (what.size() > 400) what = what.substr(0, 400) + "…";
  return what;
}

StatusOr<int> EnvInt(const char* name, int lo, int hi, std::optional<int> fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    if (fallback) return *fallback;
    return InvalidArgumentError(std::string(name) + " is not set (distributed runs need RANK, WORLD_SIZE, "
                                "MASTER_ADDR and MASTER_PORT, as torchrun sets them)");
  }
  int x = 0;
  const std::string s(v);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
  if (ec != std::errc() || end != s.data() + s.size() || x < lo || x > hi) {
    return InvalidArgumentError(std::string(name) + "='" + s + "' is not an integer in [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "]");
  }
  return x;
}

}  // namespace

StatusOr<std::optional<DistEnv>> ReadDistEnv() {
  const char* ws = std::getenv("WORLD_SIZE");
  if (ws == nullptr || *ws == '\0') return std::optional<DistEnv>();
  DistEnv env;
  ADREC_ASSIGN_OR_RETURN(env.world_size, EnvInt("WORLD_SIZE", 1, 1 << 16, std::nullopt));
  ADREC_ASSIGN_OR_RETURN(env.rank, EnvInt("RANK", 0, env.world_size - 1, env.world_size == 1 ? std::optional<int>(0) : std::nullopt));
  if (env.world_size == 1) return std::optional<DistEnv>();
  ADREC_ASSIGN_OR_RETURN(env.local_rank, EnvInt("LOCAL_RANK", 0, 1 << 16, 0));
  ADREC_ASSIGN_OR_RETURN(env.master_port, EnvInt("MASTER_PORT", 1, 65535, std::nullopt));
  const char* addr = std::getenv("MASTER_ADDR");
  if (addr == nullptr || *addr == '\0') {
    return InvalidArgumentError("MASTER_ADDR is not set (the host of rank 0, where the ranks meet)");
  }
  env.master_addr = addr;
  return std::optional<DistEnv>(env);
}

struct Distributed::Impl {
  int rank = 0, world = 1;
  std::string backend;
  torch::Device device = torch::kCPU;
  std::chrono::milliseconds timeout{0};
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> pg;
  int64_t checks = 0;
  std::mutex comm_mu;
  double comm_seconds = 0;

  std::string Where(std::string_view op) const {
    return "rank " + std::to_string(rank) + " of " + std::to_string(world) + ": " + std::string(op);
  }
  Status Failed(std::string_view op, const std::exception& e) const {
    return IoError(Where(op) + " failed (" + FirstLine(e) +
                   "): another rank stopped or stopped answering within the timeout; every rank stops");
  }
  void AddComm(Clock::time_point t0) {
    std::lock_guard<std::mutex> lock(comm_mu);
    comm_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  template <typename F>
  Status Run(std::string_view op, F&& f) {
    const auto t0 = Clock::now();
    try {
      f();
    } catch (const std::exception& e) {
      AddComm(t0);
      return Failed(op, e);
    }
    AddComm(t0);
    return Status::Ok();
  }
};

Distributed::Distributed() : impl_(std::make_unique<Impl>()) {}
Distributed::~Distributed() {
  if (impl_ && impl_->pg) {
    try {
      impl_->pg->shutdown();
    } catch (const std::exception&) {
      // A failed group has nothing left to shut down cleanly.
    }
  }
}

StatusOr<std::unique_ptr<Distributed>> Distributed::Init(const DistEnv& env, const torch::Device& device,
                                                         const DistOptions& options) {
  std::unique_ptr<Distributed> d(new Distributed());
  Impl& m = *d->impl_;
  m.rank = env.rank;
  m.world = env.world_size;
  m.device = device;
  m.timeout = options.timeout;
  const std::string at = env.master_addr + ":" + std::to_string(env.master_port);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = env.world_size;
    so.waitWorkers = true;
    so.timeout = options.timeout;
    m.store = c10::make_intrusive<c10d::PrefixStore>("adrec", c10::make_intrusive<c10d::TCPStore>(env.master_addr, so));
  } catch (const std::exception& e) {
    return IoError(m.Where("the rendezvous at " + at) + " failed (" + FirstLine(e) + "); rank 0 serves it and every rank " +
                   "must start within the timeout");
  }
  try {
    if (device.is_cuda()) {
#ifdef ADREC_HAVE_NCCL
      // The process's current device is its own GPU, so NCCL's communicators and any context
      // CUDA creates implicitly live there, not all on GPU 0.
      if (device.has_index()) c10::cuda::set_device(device.index());
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = options.timeout;
      m.pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(m.store, env.rank, env.world_size, o);
      m.backend = "nccl";
#else
      return FailedPreconditionError("this build has no NCCL (nccl.h was not found at configure time): distributed "
                                     "training on CUDA needs it");
#endif
    } else {
      auto o = c10d::ProcessGroupGloo::Options::create(options.timeout);
      // The interface Gloo listens on: GLOO_SOCKET_IFNAME as torch reads it, loopback for a
      // run on one host through 127.0.0.1, else the address this host's name resolves to.
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname != '\0') {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost" || env.master_addr == "::1") {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(env.master_addr));
      } else {
        o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      o->threads = 2;
      m.pg = c10::make_intrusive<c10d::ProcessGroupGloo>(m.store, env.rank, env.world_size, o);
      m.backend = "gloo";
    }
  } catch (const std::exception& e) {
    return IoError(m.Where("starting the process group at " + at) + " failed (" + FirstLine(e) + ")");
  }
  return d;
}

int Distributed::rank() const { return impl_->rank; }
int Distributed::world_size() const { return impl_->world; }
std::string Distributed::backend() const { return impl_->backend; }
const torch::Device& Distributed::device() const { return impl_->device; }

Status Distributed::CheckSame(std::string_view what, const std::string& value) {
  Impl& m = *impl_;
  const std::string base = "check/" + std::to_string(m.checks++) + "/";
  std::map<std::string, std::vector<int>> seen;
  Status st = m.Run("comparing " + std::string(what), [&] {
    m.store->set(base + std::to_string(m.rank), std::vector<uint8_t>(value.begin(), value.end()));
    for (int r = 0; r < m.world; ++r) {
      const std::vector<uint8_t> v = m.store->get(base + std::to_string(r));  // waits up to the timeout
      seen[std::string(v.begin(), v.end())].push_back(r);
    }
  });
  ADREC_RETURN_IF_ERROR(st);
  if (seen.size() == 1) return Status::Ok();
  std::string groups;
  for (const auto& [v, ranks] : seen) {
    std::string list;
    for (int r : ranks) list += (list.empty() ? "" : ",") + std::to_string(r);
    groups += (groups.empty() ? "" : "; ") + ("ranks " + list + ": " + (v.size() > 80 ? v.substr(0, 80) + "…" : v));
  }
  return FailedPreconditionError("the ranks disagree on " + std::string(what) + " (" + groups +
                                 "): start every rank with the same config, data and settings");
}

namespace {
// The tensors as one flat buffer per dtype (a backend's list argument means one tensor per
// device, all of one shape): one collective each, then the values go back in place.
template <typename F>
void Flattened(std::vector<torch::Tensor>& tensors, F&& collective) {
  std::map<c10::ScalarType, std::vector<size_t>> by_type;
  for (size_t i = 0; i < tensors.size(); ++i) by_type[tensors[i].scalar_type()].push_back(i);
  for (auto& [type, idx] : by_type) {
    std::vector<torch::Tensor> parts;
    for (size_t i : idx) parts.push_back(tensors[i].reshape({-1}));
    std::vector<torch::Tensor> flat{torch::cat(parts)};
    collective(flat);
    int64_t at = 0;
    for (size_t i : idx) {
      const int64_t n = tensors[i].numel();
      tensors[i].copy_(flat[0].narrow(0, at, n).view(tensors[i].sizes()));
      at += n;
    }
  }
}
}  // namespace

Status Distributed::AllReduceSum(std::vector<torch::Tensor>& tensors) {
  return impl_->Run("all-reduce", [&] {
    Flattened(tensors, [&](std::vector<torch::Tensor>& flat) { impl_->pg->allreduce(flat)->wait(); });
  });
}

Status Distributed::Broadcast(std::vector<torch::Tensor>& tensors, int root) {
  return impl_->Run("broadcast", [&] {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    Flattened(tensors, [&](std::vector<torch::Tensor>& flat) { impl_->pg->broadcast(flat, o)->wait(); });
  });
}

StatusOr<torch::Tensor> Distributed::AllGather(const torch::Tensor& input) {
  std::vector<int64_t> shape = input.sizes().vec();
  shape.insert(shape.begin(), impl_->world);
  torch::Tensor out = torch::empty(shape, input.options());
  torch::Tensor in = input.contiguous();
  ADREC_RETURN_IF_ERROR(impl_->Run("all-gather", [&] {
    torch::Tensor flat = out.view({-1});
    torch::Tensor flat_in = in.view({-1});
    impl_->pg->_allgather_base(flat, flat_in)->wait();
  }));
  return out;
}

StatusOr<std::vector<int64_t>> Distributed::ExchangeCounts(const std::vector<int64_t>& send_counts) {
  TORCH_CHECK(static_cast<int>(send_counts.size()) == impl_->world, "ExchangeCounts: one count per rank");
  torch::Tensor in = torch::tensor(send_counts, torch::kLong).to(impl_->device);
  torch::Tensor out = torch::empty_like(in);
  ADREC_RETURN_IF_ERROR(impl_->Run("all-to-all of counts", [&] {
    std::vector<int64_t> equal;
    impl_->pg->alltoall_base(out, in, equal, equal)->wait();
  }));
  torch::Tensor c = out.cpu();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

StatusOr<torch::Tensor> Distributed::AllToAll(const torch::Tensor& input, const std::vector<int64_t>& send_counts,
                                              const std::vector<int64_t>& recv_counts) {
  const int W = impl_->world;
  TORCH_CHECK(static_cast<int>(send_counts.size()) == W && static_cast<int>(recv_counts.size()) == W,
              "AllToAll: one count per rank");
  int64_t recv_rows = 0, send_rows = 0;
  for (int r = 0; r < W; ++r) recv_rows += recv_counts[r], send_rows += send_counts[r];
  TORCH_CHECK(send_rows == input.size(0), "AllToAll: counts sum to ", send_rows, ", input has ", input.size(0), " rows");
  std::vector<int64_t> shape = input.sizes().vec();
  shape[0] = recv_rows;
  torch::Tensor out = torch::empty(shape, input.options());
  torch::Tensor in = input.contiguous();
  ADREC_RETURN_IF_ERROR(impl_->Run("all-to-all", [&] {
    std::vector<int64_t> out_splits = recv_counts, in_splits = send_counts;
    impl_->pg->alltoall_base(out, in, out_splits, in_splits)->wait();
  }));
  return out;
}

Status Distributed::Barrier() {
  return impl_->Run("barrier", [&] { impl_->pg->barrier()->wait(); });
}

struct Distributed::Pending::Impl {
  Distributed::Impl* owner = nullptr;
  c10::intrusive_ptr<c10d::Work> work;
  std::vector<torch::Tensor> tensors;  // kept alive until the sum has run
  std::string error;                   // a failure at the start
};
Distributed::Pending::Pending() = default;
Distributed::Pending::~Pending() = default;
Distributed::Pending::Pending(Pending&&) noexcept = default;
Distributed::Pending& Distributed::Pending::operator=(Pending&&) noexcept = default;

Status Distributed::Pending::Wait() {
  if (!impl_) return Status::Ok();
  Impl& p = *impl_;
  if (!p.error.empty()) return IoError(p.error);
  Status st = p.owner->Run("all-reduce of a gradient bucket", [&] { p.work->wait(); });
  impl_.reset();
  return st;
}

Distributed::Pending Distributed::AllReduceSumAsync(torch::Tensor tensor) {
  Pending out;
  out.impl_ = std::make_unique<Pending::Impl>();
  out.impl_->owner = impl_.get();
  out.impl_->tensors.push_back(std::move(tensor));
  try {
    out.impl_->work = impl_->pg->allreduce(out.impl_->tensors);
  } catch (const std::exception& e) {
    out.impl_->error = impl_->Failed("starting an all-reduce", e).message();
  }
  return out;
}

double Distributed::TakeCommSeconds() {
  std::lock_guard<std::mutex> lock(impl_->comm_mu);
  const double s = impl_->comm_seconds;
  impl_->comm_seconds = 0;
  return s;
}

namespace {
class DistShardExchange final : public embedding::ShardExchange {
 public:
  explicit DistShardExchange(Distributed& dist) : dist_(dist) {}
  int rank() const override { return dist_.rank(); }
  int world_size() const override { return dist_.world_size(); }
  torch::Tensor AllToAll(const torch::Tensor& input, const std::vector<int64_t>& send_counts,
                         const std::vector<int64_t>& recv_counts) override {
    StatusOr<torch::Tensor> out = dist_.AllToAll(input, send_counts, recv_counts);
    if (!out.ok()) throw std::runtime_error(out.status().message());
    return std::move(*out);
  }

 private:
  Distributed& dist_;
};
}  // namespace

std::unique_ptr<embedding::ShardExchange> MakeShardExchange(Distributed& dist) {
  return std::make_unique<DistShardExchange>(dist);
}

// ---------------------------------------------------------------------------------------------

struct GradientSync::Impl {
  Distributed* dist = nullptr;
  std::vector<torch::Tensor> params;
  struct Bucket {
    std::vector<size_t> members;  // indices into params
    std::vector<torch::Tensor> grads;
    size_t ready = 0;
    torch::Tensor flat;
    Distributed::Pending pending;
  };
  std::vector<Bucket> buckets;
  std::vector<std::pair<size_t, size_t>> where;  // param → (bucket, slot)
  size_t next_to_start = 0;                      // buckets start in this order only
  std::mutex mu;                                 // hooks run on autograd's threads
  std::vector<std::pair<size_t, unsigned>> hooks;  // (param, hook id), removed with this object

  void Start(Bucket& b) {
    std::vector<torch::Tensor> parts;
    for (size_t k = 0; k < b.members.size(); ++k) {
      const torch::Tensor& p = params[b.members[k]];
      parts.push_back(b.grads[k].defined() ? b.grads[k].reshape({-1}) : torch::zeros({p.numel()}, p.options()));
    }
    b.flat = torch::cat(parts).div_(static_cast<double>(dist->world_size()));
    b.pending = dist->AllReduceSumAsync(b.flat);
  }
  // Starts every complete bucket from next_to_start on, in order.
  void StartReady() {
    while (next_to_start < buckets.size() && buckets[next_to_start].ready == buckets[next_to_start].members.size()) {
      Start(buckets[next_to_start++]);
    }
  }
};

GradientSync::GradientSync(Distributed& dist, std::vector<torch::Tensor> params, int64_t bucket_bytes)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.dist = &dist;
  m.params = std::move(params);
  m.where.resize(m.params.size());
  // Backward produces the last layers' gradients first: buckets from the end of the list.
  int64_t bytes = bucket_bytes;
  for (size_t k = m.params.size(); k-- > 0;) {
    const torch::Tensor& p = m.params[k];
    if (!p.requires_grad()) continue;
    if (m.buckets.empty() || bytes >= bucket_bytes) {
      m.buckets.emplace_back();
      bytes = 0;
    }
    Impl::Bucket& b = m.buckets.back();
    m.where[k] = {m.buckets.size() - 1, b.members.size()};
    b.members.push_back(k);
    b.grads.emplace_back();
    bytes += p.numel() * static_cast<int64_t>(p.element_size());
  }
  for (size_t k = 0; k < m.params.size(); ++k) {
    torch::Tensor& p = m.params[k];
    if (!p.requires_grad()) continue;
    Impl* self = impl_.get();
    const unsigned id = p.register_hook([self, k](torch::Tensor grad) {
      std::lock_guard<std::mutex> lock(self->mu);
      auto [bi, slot] = self->where[k];
      Impl::Bucket& b = self->buckets[bi];
      if (!b.grads[slot].defined()) ++b.ready;
      b.grads[slot] = grad;
      self->StartReady();
      return grad;
    });
    m.hooks.emplace_back(k, id);
  }
}

GradientSync::~GradientSync() {
  for (auto [k, id] : impl_->hooks) impl_->params[k].remove_hook(id);
}
int64_t GradientSync::buckets() const { return static_cast<int64_t>(impl_->buckets.size()); }

Status GradientSync::Finish() {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  // Buckets a parameter without gradient kept back start now, zeros in its place.
  while (m.next_to_start < m.buckets.size()) m.Start(m.buckets[m.next_to_start++]);
  Status first = Status::Ok();
  for (Impl::Bucket& b : m.buckets) {
    Status st = b.pending.Wait();
    if (!st.ok() && first.ok()) first = st;
    if (first.ok()) {
      int64_t at = 0;
      for (size_t k : b.members) {
        torch::Tensor& p = m.params[k];
        torch::Tensor avg = b.flat.narrow(0, at, p.numel()).view(p.sizes());
        at += p.numel();
        if (p.grad().defined()) {
          p.mutable_grad().copy_(avg);
        } else {
          p.mutable_grad() = avg.clone();
        }
      }
    }
    b.grads.assign(b.grads.size(), torch::Tensor());
    b.ready = 0;
    b.flat = torch::Tensor();
  }
  m.next_to_start = 0;
  return first;
}

}  // namespace adrec::train
