#include "adrec/tensor/device.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

namespace adrec::tensor {
namespace {

TEST(ParseDevice, CpuAndCudaSpellings) {
  auto cpu = ParseDevice("cpu");
  ASSERT_TRUE(cpu.ok());
  EXPECT_TRUE(cpu->is_cpu());
  for (const char* name : {"cuda", "cuda:0"}) {
    auto d = ParseDevice(name);
    if (torch::cuda::is_available()) {
      ASSERT_TRUE(d.ok()) << d.status().ToString();
      EXPECT_TRUE(d->is_cuda());
    } else {
      EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << name;
      EXPECT_NE(d.status().message().find("no CUDA device"), std::string::npos);
    }
  }
}

TEST(ParseDevice, UnknownNamesListTheSpellings) {
  for (const char* name : {"gpu", "CPU", "cuda:x", "cudax", "", "cuda:-1", "mps"}) {
    auto d = ParseDevice(name);
    ASSERT_FALSE(d.ok()) << name;
    if (d.status().code() == StatusCode::kFailedPrecondition) continue;  // "cuda…" forms on a CPU-only libtorch
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << name;
    EXPECT_NE(d.status().message().find("cpu, cuda or cuda:N"), std::string::npos) << d.status().message();
  }
}

TEST(ParseDevice, AnIndexPastTheDevicesIsAnError) {
  auto d = ParseDevice("cuda:4096");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace adrec::tensor
