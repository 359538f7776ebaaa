#include "adrec/tensor/tensor_io.h"

#include <unistd.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <random>
#include <sstream>

#include "adrec/core/build_paths.h"
#include "adrec/core/file.h"
#include "adrec/core/safetensors.h"
#include "adrec/core/testing.h"

namespace adrec::tensor {
namespace {

namespace fs = std::filesystem;

const std::string kScript = std::string(adrec::build_paths::SourceDir()) + "/adrec/tensor/testdata/safetensors_check.py";

// Runs the reference script; returns its exit status and stdout (stderr passes through to the log).
std::pair<int, std::string> RunPython(const std::string& args) {
  std::string cmd = "'" + std::string(adrec::build_paths::Python()) + "' '" + kScript + "' " + args;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, ""};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  return {rc, out};
}

bool PythonHasSafetensors() {
  static const bool ok = RunPython("check 2>/dev/null").first == 0;
  return ok;
}

#define SKIP_WITHOUT_PYTHON_SAFETENSORS()                                                             \
  if (!PythonHasSafetensors())                                                                       \
  ADREC_SKIP_WITHOUT_REFERENCE(std::string(adrec::build_paths::Python()) +                                        \
                               " cannot import safetensors.torch (run scripts/setup to create the venv); the Python cross-checks need it")

std::string Quote(const fs::path& p) { return "'" + p.string() + "'"; }

std::string Hex(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : s) {
    out.push_back(kHex[static_cast<unsigned char>(c) >> 4]);
    out.push_back(kHex[static_cast<unsigned char>(c) & 0xF]);
  }
  return out;
}

// The testdata script's ramp(): the same values on both sides without shipping a binary file.
torch::Tensor Ramp(torch::ScalarType dtype, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  torch::Tensor base = torch::arange(n, torch::kInt64);
  torch::Tensor t;
  if (torch::isFloatingType(dtype)) {
    t = base.to(torch::kFloat64) * 0.25 - 1.5;
  } else if (dtype == torch::kBool) {
    t = base.remainder(3) == 0;
  } else if (dtype == torch::kUInt8) {
    t = base * 3 + 5;
  } else {
    t = base * 3 - 5;
  }
  return t.to(dtype).reshape(shape);
}

struct RampSpec {
  std::string name;
  torch::ScalarType dtype;
  std::vector<int64_t> shape;
};

// Keep in step with RAMPS in testdata/safetensors_check.py.
const std::vector<RampSpec>& Ramps() {
  static const std::vector<RampSpec> ramps = {
      {"f64", torch::kFloat64, {2, 3}}, {"f32", torch::kFloat32, {3, 4}}, {"f16", torch::kFloat16, {5}},
      {"bf16", torch::kBFloat16, {2, 2}}, {"i64", torch::kInt64, {4}}, {"i32", torch::kInt32, {2, 3}},
      {"i16", torch::kInt16, {3}}, {"i8", torch::kInt8, {7}}, {"u8", torch::kUInt8, {6}},
      {"mask", torch::kBool, {5}}, {"scalar", torch::kFloat32, {}}, {"empty", torch::kFloat32, {0, 3}},
      {"empty_i64", torch::kInt64, {0}},
  };
  return ramps;
}

// The script's special-value tensors.
std::map<std::string, torch::Tensor> Specials() {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  return {
      {"f16_special", torch::tensor(std::vector<float>{0.1f, -0.0f, 65504.0f, 6e-8f, inf, nan, 1e5f}).to(torch::kFloat16)},
      {"bf16_special", torch::tensor(std::vector<float>{0.1f, 3.14159f, -1e38f, 1e-40f, -inf, nan}).to(torch::kBFloat16)},
      {"i64_extreme", torch::tensor(std::vector<int64_t>{std::numeric_limits<int64_t>::max(),
                                                         std::numeric_limits<int64_t>::min(), 0, 12345678901234})},
  };
}

// Same dtype, shape and bytes (so NaNs and -0.0 compare as stored, unlike torch::equal).
void ExpectSameTensor(const torch::Tensor& got, const torch::Tensor& want, const std::string& name) {
  ASSERT_TRUE(got.defined()) << name;
  EXPECT_EQ(got.scalar_type(), want.scalar_type()) << name;
  ASSERT_EQ(got.sizes(), want.sizes()) << name;
  torch::Tensor g = got.cpu().contiguous(), w = want.cpu().contiguous();
  ASSERT_EQ(g.nbytes(), w.nbytes()) << name;
  if (g.nbytes() == 0) return;  // empty tensors may hold null data, which memcmp must not see
  EXPECT_EQ(0, std::memcmp(g.data_ptr(), w.data_ptr(), g.nbytes())) << name << "\n got " << g << "\nwant " << w;
}

std::string PyDtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat64: return "torch.float64";
    case torch::kFloat32: return "torch.float32";
    case torch::kFloat16: return "torch.float16";
    case torch::kBFloat16: return "torch.bfloat16";
    case torch::kInt64: return "torch.int64";
    case torch::kInt32: return "torch.int32";
    case torch::kInt16: return "torch.int16";
    case torch::kInt8: return "torch.int8";
    case torch::kUInt8: return "torch.uint8";
    case torch::kBool: return "torch.bool";
    default: return "?";
  }
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, sep)) out.push_back(item);
  return out;
}

// Checks one "tensor" line of the script's output against the tensor we saved.
void ExpectPythonSees(const std::vector<std::string>& f, const torch::Tensor& want, const std::string& name) {
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(f[2], PyDtype(want.scalar_type())) << name;
  std::string shape;
  for (int64_t d : want.sizes()) shape += (shape.empty() ? "" : ",") + std::to_string(d);
  EXPECT_EQ(f[3], shape.empty() ? "-" : shape) << name;
  std::vector<std::string> values = f[4] == "-" ? std::vector<std::string>{} : Split(f[4], ',');
  torch::Tensor flat = want.cpu().contiguous().flatten();
  ASSERT_EQ(static_cast<int64_t>(values.size()), flat.numel()) << name;
  if (torch::isFloatingType(want.scalar_type())) {
    torch::Tensor d = flat.to(torch::kFloat64);
    for (int64_t i = 0; i < flat.numel(); ++i) {
      double py = std::strtod(values[i].c_str(), nullptr), ours = d[i].item<double>();
      if (std::isnan(ours)) {
        EXPECT_TRUE(std::isnan(py)) << name << "[" << i << "] = " << values[i];
      } else {
        EXPECT_EQ(py, ours) << name << "[" << i << "] = " << values[i];
        EXPECT_EQ(std::signbit(py), std::signbit(ours)) << name << "[" << i << "]";
      }
    }
  } else {
    torch::Tensor l = flat.to(torch::kInt64);
    for (int64_t i = 0; i < flat.numel(); ++i) {
      EXPECT_EQ(std::strtoll(values[i].c_str(), nullptr, 10), l[i].item<int64_t>()) << name << "[" << i << "]";
    }
  }
}

TEST(TensorIo, RoundTripEveryDtype) {
  std::vector<std::pair<std::string, torch::Tensor>> in;
  for (const RampSpec& r : Ramps()) in.emplace_back(r.name, Ramp(r.dtype, r.shape));
  for (auto& [name, t] : Specials()) in.emplace_back(name, t);
  // A transposed view and a tensor that requires grad are stored as plain contiguous data.
  torch::Tensor base = torch::arange(12, torch::kFloat32).reshape({3, 4});
  in.emplace_back("transposed", base.t());
  in.emplace_back("grad", torch::ones({2}, torch::requires_grad()));
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"kind", "test"}};
  ScopedTempDir dir;
  ASSERT_TRUE(SaveTensors(dir.path() / "w.safetensors", in, meta).ok());

  std::map<std::string, std::string> got_meta = {{"stale", "x"}};
  StatusOr<std::map<std::string, torch::Tensor>> out = LoadTensors(dir.path() / "w.safetensors", torch::kCPU, &got_meta);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(got_meta, meta);
  ASSERT_EQ(out->size(), in.size());
  for (const auto& [name, t] : in) {
    ASSERT_TRUE(out->count(name)) << name;
    ExpectSameTensor(out->at(name), t.detach(), name);
    EXPECT_TRUE(out->at(name).is_contiguous()) << name;
    EXPECT_FALSE(out->at(name).requires_grad()) << name;
  }
  EXPECT_EQ(out->at("scalar").dim(), 0);
  EXPECT_EQ(out->at("empty").numel(), 0);
  EXPECT_EQ(out->at("transposed").sizes(), (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(out->at("transposed")[0][1].item<float>(), 4.0f);
}

// Loaded tensors own their memory: replacing or deleting the file afterwards changes nothing.
TEST(TensorIo, LoadedTensorsOutliveTheFile) {
  ScopedTempDir dir;
  const fs::path path = dir.path() / "w.safetensors";
  torch::Tensor w = torch::randn({64, 33});
  ASSERT_TRUE(SaveTensors(path, {{"w", w}}).ok());
  StatusOr<std::map<std::string, torch::Tensor>> out = LoadTensors(path);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_TRUE(SaveTensors(path, {{"w", torch::zeros({64, 33})}}).ok());  // replaced by rename
  fs::remove(path);
  ExpectSameTensor(out->at("w"), w, "w");
  EXPECT_EQ(LoadTensors(path).status().code(), StatusCode::kNotFound);
}

TEST(TensorIo, SaveRejectsBadInput) {
  ScopedTempDir dir;
  const fs::path path = dir.path() / "w.safetensors";
  auto reject = [&](std::vector<std::pair<std::string, torch::Tensor>> in, const std::string& part) {
    Status s = SaveTensors(path, in);
    ASSERT_FALSE(s.ok()) << part;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find(part), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("w.safetensors"), std::string::npos) << s.message();
    EXPECT_FALSE(fs::exists(path));
  };
  reject({{"a", torch::ones({2})}, {"a", torch::ones({3})}}, "tensor 'a': duplicate name");
  reject({{"c", torch::ones({2}, torch::kComplexFloat)}}, "tensor 'c': dtype");
  reject({{"u", torch::Tensor()}}, "tensor 'u': undefined");
  reject({{"", torch::ones({2})}}, "empty name");
  reject({{"__metadata__", torch::ones({2})}}, "reserved");
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(TensorIo, LoadReportsCorruptFiles) {
  ScopedTempDir dir;
  const fs::path path = dir.path() / "w.safetensors";
  ASSERT_TRUE(SaveTensors(path, {{"layer.weight", torch::ones({4, 4})}}).ok());
  StatusOr<std::string> bytes = ReadFile(path);
  ASSERT_TRUE(bytes.ok());
  ASSERT_TRUE(AtomicWriteFile(path, bytes->substr(0, bytes->size() - 1)).ok());
  Status s = LoadTensors(path).status();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find(path.string()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("tensor 'layer.weight'"), std::string::npos) << s.message();

  // A BOOL byte other than 0/1 would be undefined behaviour in torch: refused, naming the tensor.
  std::vector<uint8_t> flags = {0, 1, 2};
  std::vector<TensorView> views = {{"flags", Dtype::kBool, {3}, std::as_bytes(std::span(flags))}};
  ASSERT_TRUE(WriteSafetensors(path, views).ok());
  s = LoadTensors(path).status();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("tensor 'flags': BOOL element 2 is byte 2"), std::string::npos) << s.message();
}

TEST(TensorIo, CudaRoundTrip) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ScopedTempDir dir;
  torch::Tensor w = torch::randn({8, 3}, torch::kCUDA).to(torch::kBFloat16);
  ASSERT_TRUE(SaveTensors(dir.path() / "w.safetensors", {{"w", w}}).ok());
  StatusOr<std::map<std::string, torch::Tensor>> out = LoadTensors(dir.path() / "w.safetensors", torch::kCUDA);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(out->at("w").is_cuda());
  ExpectSameTensor(out->at("w"), w, "w");
}

// Our 16-bit conversions agree with torch's (c10::Half / c10::BFloat16 round to nearest even).
TEST(TensorIo, HalfConversionsMatchTorch) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float ours = HalfToFloat(static_cast<uint16_t>(h));
    float theirs = static_cast<float>(c10::Half(static_cast<uint16_t>(h), c10::Half::from_bits()));
    if (std::isnan(theirs)) {
      ASSERT_TRUE(std::isnan(ours)) << std::hex << h;
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(ours), std::bit_cast<uint32_t>(theirs)) << std::hex << h;
    }
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 2'000'000; ++i) {
    // Random bit patterns cover every exponent; every other one is near the half range.
    uint32_t bits = rng();
    if (i % 2) bits = (bits & 0x807FFFFF) | ((100 + rng() % 50) << 23);
    float f = std::bit_cast<float>(bits);
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToHalf(f), c10::Half(f).x) << f;
    ASSERT_EQ(FloatToBFloat16(f), c10::BFloat16(f).x) << f;
  }
}

// Files we write load in Python's safetensors with the same names, dtypes, shapes, values, metadata.
TEST(TensorIo, PythonReadsOurFiles) {
  SKIP_WITHOUT_PYTHON_SAFETENSORS();
  std::vector<std::pair<std::string, torch::Tensor>> in;
  for (const RampSpec& r : Ramps()) in.emplace_back(r.name, Ramp(r.dtype, r.shape));
  for (auto& [name, t] : Specials()) in.emplace_back(name, t);
  in.emplace_back("encoder.layer.0.attention.权重", torch::randn({3, 5}).to(torch::kBFloat16));
  in.emplace_back("transposed", torch::randn({4, 6}).t());
  std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"note", "quote \" backslash \\ newline \n tab \t ctrl \x01 中文"}, {"", "empty key"}};
  ScopedTempDir dir;
  const fs::path path = dir.path() / "ours.safetensors";
  ASSERT_TRUE(SaveTensors(path, in, meta).ok());

  auto [rc, out] = RunPython("read " + Quote(path));
  ASSERT_EQ(rc, 0) << out;
  std::map<std::string, std::string> py_meta;
  std::map<std::string, std::vector<std::string>> py_tensors;
  for (const std::string& line : Split(out, '\n')) {
    std::vector<std::string> f = Split(line, ' ');
    if (f.size() == 3 && f[0] == "meta") py_meta[f[1]] = f[2];
    else if (f.size() == 5 && f[0] == "tensor") py_tensors[f[1]] = f;
    else ADD_FAILURE() << "unexpected line from Python: " << line;
  }
  std::map<std::string, std::string> want_meta;
  for (const auto& [k, v] : meta) want_meta[Hex(k)] = Hex(v);
  EXPECT_EQ(py_meta, want_meta);
  ASSERT_EQ(py_tensors.size(), in.size());
  for (const auto& [name, t] : in) {
    ASSERT_TRUE(py_tensors.count(Hex(name))) << "Python does not see " << name;
    ExpectPythonSees(py_tensors[Hex(name)], t, name);
  }
}

// Files Python writes load in ours, value for value, and our writer reproduces its bytes exactly.
TEST(TensorIo, WeReadPythonFiles) {
  SKIP_WITHOUT_PYTHON_SAFETENSORS();
  ScopedTempDir dir;
  const fs::path path = dir.path() / "python.safetensors";
  auto [rc, out] = RunPython("write " + Quote(path));
  ASSERT_EQ(rc, 0) << out;
  std::map<std::string, std::string> meta;
  StatusOr<std::map<std::string, torch::Tensor>> got = LoadTensors(path, torch::kCPU, &meta);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(meta, (std::map<std::string, std::string>{{"producer", "python \u2713"}}));

  std::vector<std::pair<std::string, torch::Tensor>> want;
  for (const RampSpec& r : Ramps()) want.emplace_back(r.name, Ramp(r.dtype, r.shape));
  for (auto& [name, t] : Specials()) want.emplace_back(name, t);
  ASSERT_EQ(got->size(), want.size());
  for (const auto& [name, t] : want) {
    ASSERT_TRUE(got->count(name)) << name;
    ExpectSameTensor(got->at(name), t, name);
  }
  // Spot values, so a shared mistake in Ramp() and ramp() cannot hide.
  EXPECT_EQ(got->at("f16")[4].item<float>(), -0.5f);
  EXPECT_EQ(got->at("bf16")[1][1].item<float>(), -0.75f);
  EXPECT_EQ(got->at("u8")[5].item<uint8_t>(), 20);
  EXPECT_EQ(got->at("i8")[0].item<int8_t>(), -5);
  EXPECT_EQ(got->at("i64_extreme")[1].item<int64_t>(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(got->at("f16_special")[2].item<float>(), 65504.0f);
  EXPECT_TRUE(std::isinf(got->at("f16_special")[6].item<float>()));
  EXPECT_EQ(got->at("f16_special").view(torch::kInt16)[0].item<int16_t>(), static_cast<int16_t>(FloatToHalf(0.1f)));
  EXPECT_EQ(got->at("bf16_special").view(torch::kInt16)[1].item<int16_t>(),
            static_cast<int16_t>(FloatToBFloat16(3.14159f)));

  // Same tensors and metadata through our writer: the very bytes Python wrote.
  const fs::path ours = dir.path() / "ours.safetensors";
  ASSERT_TRUE(SaveTensors(ours, want, meta).ok());
  StatusOr<std::string> a = ReadFile(path), b = ReadFile(ours);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(*a == *b) << "headers differ:\n python " << a->substr(8, 200) << "\n ours   " << b->substr(8, 200);
}

}  // namespace
}  // namespace adrec::tensor
