// Real Gloo ranks on 127.0.0.1: the test binary starts itself twice as RANK 0 and 1 (the
// DistributedWorker test runs a scenario only under ADREC_DIST_SCENARIO) and checks both exit
// cleanly within a bounded wait.
#include "adrec/train/distributed.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace adrec::train {
namespace {

// A port the kernel says is free now (another process may take it before the ranks do; the
// rendezvous then fails loudly rather than hanging).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

struct RankResult {
  int exit_code = -1;
  std::string output;
};

// Starts `world` copies of this binary running `scenario`; waits at most `limit` for them.
std::vector<RankResult> RunRanks(const std::string& scenario, int world, std::chrono::seconds limit) {
  const int port = FreePort();
  const std::string tmp = ::testing::TempDir();
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    const std::string log = tmp + "/dist_" + scenario + "_" + std::to_string(r) + ".log";
    // Everything the child needs is made before fork: between fork and exec a multi-threaded
    // parent's child may call only async-signal-safe functions.
    std::vector<std::string> env_s;
    for (char** e = environ; *e != nullptr; ++e) env_s.emplace_back(*e);
    env_s.push_back("ADREC_DIST_SCENARIO=" + scenario);
    env_s.push_back("RANK=" + std::to_string(r));
    env_s.push_back("LOCAL_RANK=" + std::to_string(r));
    env_s.push_back("WORLD_SIZE=" + std::to_string(world));
    env_s.push_back("MASTER_ADDR=127.0.0.1");
    env_s.push_back("MASTER_PORT=" + std::to_string(port));
    std::vector<char*> envp;
    for (std::string& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);
    char arg0[] = "dist_worker", arg1[] = "--gtest_filter=DistributedWorker.Scenario";
    char* argv[] = {arg0, arg1, nullptr};
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      execve("/proc/self/exe", argv, envp.data());
      _exit(127);
    }
    close(fd);
    pids.push_back(pid);
  }
  std::vector<RankResult> out(world);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (int r = 0; r < world; ++r) {
    int status = 0;
    while (waitpid(pids[r], &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pids[r], SIGKILL);
        waitpid(pids[r], &status, 0);
        out[r].output = "(killed after the time limit) ";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    out[r].exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::ifstream in(tmp + "/dist_" + scenario + "_" + std::to_string(r) + ".log");
    std::stringstream ss;
    ss << in.rdbuf();
    out[r].output += ss.str();
  }
  return out;
}

std::unique_ptr<Distributed> JoinGroup(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  auto env = ReadDistEnv();
  EXPECT_TRUE(env.ok() && env->has_value()) << env.status().ToString();
  DistOptions o;
  o.timeout = timeout;
  auto d = Distributed::Init(**env, torch::kCPU, o);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? std::move(*d) : nullptr;
}

void Collectives() {
  auto d = JoinGroup();
  ASSERT_NE(d, nullptr);
  const int r = d->rank(), W = d->world_size();
  EXPECT_EQ(d->backend(), "gloo");
  std::vector<torch::Tensor> t{torch::full({3}, static_cast<float>(r + 1))};
  ASSERT_TRUE(d->AllReduceSum(t).ok());
  EXPECT_TRUE(torch::equal(t[0], torch::full({3}, 3.0f)));  // 1 + 2

  // Tensors of several shapes and types in one call (a model's parameters).
  std::vector<torch::Tensor> b{torch::full({2}, static_cast<float>(10 + r)), torch::full({3, 1}, 20.0 + r),
                               torch::full({1}, static_cast<int64_t>(r))};
  ASSERT_TRUE(d->Broadcast(b, 1).ok());
  EXPECT_TRUE(torch::equal(b[0], torch::full({2}, 11.0f)));
  EXPECT_TRUE(torch::equal(b[1], torch::full({3, 1}, 21.0)));
  EXPECT_EQ(b[2].item<int64_t>(), 1);

  auto g = d->AllGather(torch::tensor({r, 10 * r}, torch::kLong));
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_TRUE(torch::equal(*g, torch::tensor({0, 0, 1, 10}, torch::kLong).view({2, 2})));

  // Uneven all-to-all: rank 0 sends 1 row to itself and 3 to rank 1; rank 1 sends 0 and 2.
  const std::vector<int64_t> send = r == 0 ? std::vector<int64_t>{1, 3} : std::vector<int64_t>{0, 2};
  auto recv = d->ExchangeCounts(send);
  ASSERT_TRUE(recv.ok());
  EXPECT_EQ(*recv, (r == 0 ? std::vector<int64_t>{1, 0} : std::vector<int64_t>{3, 2}));
  torch::Tensor rows = torch::arange(send[0] + send[1], torch::kFloat).unsqueeze(1).repeat({1, 2}) + 100 * r;
  auto a2a = d->AllToAll(rows, send, *recv);
  ASSERT_TRUE(a2a.ok()) << a2a.status().ToString();
  torch::Tensor want = r == 0 ? torch::tensor({0.f}) : torch::tensor({1.f, 2.f, 3.f, 100.f, 101.f});
  EXPECT_TRUE(torch::equal(*a2a, want.unsqueeze(1).repeat({1, 2}))) << *a2a;
  EXPECT_TRUE(d->CheckSame("the config hash", "abc").ok());

  // GradientSync: two linear layers, each rank a different batch; the synced gradient is the
  // mean of the two ranks' gradients, computed here from both batches.
  torch::manual_seed(3);
  torch::nn::Sequential net(torch::nn::Linear(4, 8), torch::nn::ReLU(), torch::nn::Linear(8, 1));
  std::vector<torch::Tensor> xs, ys;
  for (int k = 0; k < W; ++k) xs.push_back(torch::randn({5, 4})), ys.push_back(torch::randn({5, 1}));
  std::vector<torch::Tensor> want_grads;
  for (auto& p : net->parameters()) want_grads.push_back(torch::zeros_like(p));
  for (int k = 0; k < W; ++k) {
    net->zero_grad();
    torch::mse_loss(net->forward(xs[k]), ys[k]).backward();
    for (size_t i = 0; i < want_grads.size(); ++i) want_grads[i] += net->parameters()[i].grad() / W;
  }
  // Tiny buckets: several of them, started in order while backward runs.
  GradientSync sync(*d, net->parameters(), /*bucket_bytes=*/16);
  EXPECT_GE(sync.buckets(), 3);
  for (int round = 0; round < 2; ++round) {
    net->zero_grad();
    torch::mse_loss(net->forward(xs[r]), ys[r]).backward();
    ASSERT_TRUE(sync.Finish().ok());
    for (size_t i = 0; i < want_grads.size(); ++i) {
      EXPECT_TRUE(torch::allclose(net->parameters()[i].grad(), want_grads[i], 1e-5, 1e-6)) << "param " << i;
    }
  }
  EXPECT_GT(d->TakeCommSeconds(), 0.0);
}

void Mismatch() {
  auto d = JoinGroup();
  ASSERT_NE(d, nullptr);
  Status st = d->CheckSame("the config hash", d->rank() == 0 ? "aaaa" : "bbbb");
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("the config hash"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("ranks 0: aaaa; ranks 1: bbbb"), std::string::npos) << st.ToString();
}

void DeadRank() {
  auto d = JoinGroup(std::chrono::seconds(10));
  ASSERT_NE(d, nullptr);
  if (d->rank() == 1) std::_Exit(0);  // dies without a word
  std::vector<torch::Tensor> t{torch::ones({4})};
  const auto t0 = std::chrono::steady_clock::now();
  Status st = d->AllReduceSum(t);
  EXPECT_EQ(st.code(), StatusCode::kIoError) << st.ToString();
  EXPECT_NE(st.message().find("rank 0 of 2: all-reduce failed"), std::string::npos) << st.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
}

TEST(DistributedWorker, Scenario) {
  const char* s = std::getenv("ADREC_DIST_SCENARIO");
  if (s == nullptr) GTEST_SKIP() << "runs only as a rank started by the Distributed tests";
  const std::string scenario(s);
  if (scenario == "collectives") Collectives();
  if (scenario == "mismatch") Mismatch();
  if (scenario == "dead") DeadRank();
}

void ExpectRanksPass(const std::vector<RankResult>& ranks) {
  for (size_t r = 0; r < ranks.size(); ++r) {
    EXPECT_EQ(ranks[r].exit_code, 0) << "rank " << r << ":\n" << ranks[r].output;
  }
}

TEST(Distributed, GlooCollectivesAndGradientBucketsOnTwoRanks) {
  ExpectRanksPass(RunRanks("collectives", 2, std::chrono::seconds(120)));
}

TEST(Distributed, RanksWithDifferentConfigsStopAtTheStart) {
  ExpectRanksPass(RunRanks("mismatch", 2, std::chrono::seconds(120)));
}

TEST(Distributed, ARankThatDiesStopsTheOthersWithAnError) {
  ExpectRanksPass(RunRanks("dead", 2, std::chrono::seconds(120)));
}

TEST(Distributed, EnvironmentIsReadAsTorchrunSetsIt) {
  for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) unsetenv(v);
  auto none = ReadDistEnv();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  setenv("WORLD_SIZE", "2", 1);
  setenv("RANK", "1", 1);
  setenv("MASTER_ADDR", "10.0.0.1", 1);
  auto missing = ReadDistEnv();
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("MASTER_PORT is not set"), std::string::npos) << missing.status().ToString();
  setenv("MASTER_PORT", "29501", 1);
  auto env = ReadDistEnv();
  ASSERT_TRUE(env.ok() && env->has_value()) << env.status().ToString();
  EXPECT_EQ((*env)->rank, 1);
  EXPECT_EQ((*env)->world_size, 2);
  EXPECT_EQ((*env)->local_rank, 0);
  EXPECT_EQ((*env)->master_addr, "10.0.0.1");
  EXPECT_EQ((*env)->master_port, 29501);
  setenv("RANK", "2", 1);
  EXPECT_NE(ReadDistEnv().status().message().find("RANK='2' is not an integer in [0, 1]"), std::string::npos);
  setenv("RANK", "1", 1);
  setenv("MASTER_PORT", "http", 1);
  EXPECT_NE(ReadDistEnv().status().message().find("MASTER_PORT='http'"), std::string::npos);
  for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) unsetenv(v);
}

}  // namespace
}  // namespace adrec::train
