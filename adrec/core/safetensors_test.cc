#include "adrec/core/safetensors.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>

#include "adrec/core/file.h"

namespace adrec {
namespace {

// A file from a header written by hand (not padded) and a buffer.
std::string MakeFile(std::string_view header, std::string_view buffer) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  out += header;
  out += buffer;
  return out;
}

template <typename T>
std::span<const std::byte> Bytes(const std::vector<T>& v) {
  return std::as_bytes(std::span(v));
}

template <typename T>
std::vector<T> Values(const TensorView& v) {
  std::vector<T> out(v.data.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), v.data.data(), v.data.size());
  return out;
}

// Expects an error of `code` whose message names the source and contains each of `parts`.
void ExpectError(const std::string& bytes, StatusCode code, std::vector<std::string> parts) {
  StatusOr<SafetensorsFile> f = SafetensorsFile::FromBytes(bytes, "model.safetensors");
  ASSERT_FALSE(f.ok()) << "accepted a bad file";
  EXPECT_EQ(f.status().code(), code) << f.status().ToString();
  EXPECT_NE(f.status().message().find("model.safetensors"), std::string::npos) << f.status().message();
  for (const std::string& p : parts) {
    EXPECT_NE(f.status().message().find(p), std::string::npos) << "'" << p << "' not in: " << f.status().message();
  }
}

TEST(Safetensors, DtypeTable) {
  for (Dtype d : {Dtype::kF64, Dtype::kF32, Dtype::kF16, Dtype::kBF16, Dtype::kI64, Dtype::kI32, Dtype::kI16,
                  Dtype::kI8, Dtype::kU8, Dtype::kBool}) {
    ASSERT_EQ(ParseDtype(DtypeName(d)), d) << DtypeName(d);
  }
  EXPECT_EQ(DtypeSize(Dtype::kF64), 8u);
  EXPECT_EQ(DtypeSize(Dtype::kBF16), 2u);
  EXPECT_EQ(DtypeSize(Dtype::kBool), 1u);
  EXPECT_FALSE(ParseDtype("f32").has_value());
  EXPECT_FALSE(ParseDtype("F8_E4M3").has_value());
}

// Every dtype, a 0-d scalar and empty tensors survive write -> read unchanged.
TEST(Safetensors, RoundTripEveryDtype) {
  std::vector<double> f64 = {1.5, -2.25, 1e300, -0.0, std::numeric_limits<double>::infinity(), 3.0};
  std::vector<float> f32 = {0.1f, -7.0f, 3.0e38f, 1e-45f};
  std::vector<uint16_t> f16 = {FloatToHalf(0.5f), FloatToHalf(-65504.0f), 0x0001};
  std::vector<uint16_t> bf16 = {FloatToBFloat16(3.14159f), FloatToBFloat16(-1e38f)};
  std::vector<int64_t> i64 = {std::numeric_limits<int64_t>::min(), -1, 0, std::numeric_limits<int64_t>::max()};
  std::vector<int32_t> i32 = {-2147483647 - 1, 7, 2147483647};
  std::vector<int16_t> i16 = {-32768, 32767};
  std::vector<int8_t> i8 = {-128, 0, 127};
  std::vector<uint8_t> u8 = {0, 200, 255};
  std::vector<uint8_t> flags = {1, 0, 1, 1};
  std::vector<float> scalar = {42.0f};
  std::vector<TensorView> in = {
      {"f64", Dtype::kF64, {2, 3}, Bytes(f64)},   {"f32", Dtype::kF32, {4}, Bytes(f32)},
      {"f16", Dtype::kF16, {3}, Bytes(f16)},      {"bf16", Dtype::kBF16, {1, 2}, Bytes(bf16)},
      {"i64", Dtype::kI64, {2, 2}, Bytes(i64)},   {"i32", Dtype::kI32, {3}, Bytes(i32)},
      {"i16", Dtype::kI16, {2}, Bytes(i16)},      {"i8", Dtype::kI8, {3, 1}, Bytes(i8)},
      {"u8", Dtype::kU8, {3}, Bytes(u8)},         {"mask", Dtype::kBool, {2, 2}, Bytes(flags)},
      {"scalar", Dtype::kF32, {}, Bytes(scalar)}, {"empty", Dtype::kF32, {0, 3}, {}},
      {"empty_i8", Dtype::kI8, {0}, {}},
  };
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "quote \" slash \\ newline \n 中文"}};
  ScopedTempDir dir;
  const auto path = dir.path() / "all.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, in, meta).ok());

  StatusOr<SafetensorsFile> f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->metadata(), meta);
  ASSERT_EQ(f->tensors().size(), in.size());
  for (const TensorView& want : in) {
    const TensorView* got = f->Find(want.name);
    ASSERT_NE(got, nullptr) << want.name;
    EXPECT_EQ(got->dtype, want.dtype) << want.name;
    EXPECT_EQ(got->shape, want.shape) << want.name;
    ASSERT_EQ(got->data.size(), want.data.size()) << want.name;
    if (!want.data.empty()) {
      EXPECT_EQ(0, std::memcmp(got->data.data(), want.data.data(), want.data.size())) << want.name;
    }
    // Data is ordered by element size, so every tensor is aligned for its dtype in the file.
    const std::byte* start = f->tensors().front().data.data();
    EXPECT_EQ(static_cast<size_t>(got->data.data() - start) % DtypeSize(got->dtype), 0u) << want.name;
  }
  EXPECT_EQ(f->Find("scalar")->numel(), 1);
  EXPECT_EQ(f->Find("empty")->numel(), 0);
  EXPECT_EQ(Values<int64_t>(*f->Find("i64")), i64);
  EXPECT_EQ(f->Find("missing"), nullptr);

  // The same bytes from the in-memory serializer; the header is space-padded to 8 bytes.
  StatusOr<std::string> bytes = SerializeSafetensors(in, meta);
  ASSERT_TRUE(bytes.ok());
  StatusOr<std::string> disk = ReadFile(path);
  ASSERT_TRUE(disk.ok());
  EXPECT_EQ(*bytes, *disk);
  uint64_t n;
  std::memcpy(&n, bytes->data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes->substr(8, 2), "{\"");
  EXPECT_NE(bytes->substr(8, n).find("\"__metadata__\":{"), std::string::npos);
  // No temp file is left beside the output.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()), 1);
}

// The data order is Python safetensors' (element size descending, then name), whatever the input order.
TEST(Safetensors, WriterOrderMatchesReference) {
  std::vector<uint8_t> one = {1};
  std::vector<float> f = {1.0f};
  std::vector<int64_t> l = {1};
  std::vector<TensorView> in = {{"z", Dtype::kU8, {1}, Bytes(one)},
                                {"b", Dtype::kF32, {1}, Bytes(f)},
                                {"a", Dtype::kF32, {1}, Bytes(f)},
                                {"l", Dtype::kI64, {1}, Bytes(l)}};
  StatusOr<std::string> bytes = SerializeSafetensors(in);
  ASSERT_TRUE(bytes.ok());
  uint64_t n;
  std::memcpy(&n, bytes->data(), 8);
  std::string want =
      "{\"l\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]},"
      "\"z\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[16,17]}}";
  want.append((8 - want.size() % 8) % 8, ' ');
  EXPECT_EQ(bytes->substr(8, n), want);
  EXPECT_EQ(bytes->size(), 8 + want.size() + 17);
  StatusOr<SafetensorsFile> f2 = SafetensorsFile::FromBytes(*bytes, "mem");
  ASSERT_TRUE(f2.ok()) << f2.status().ToString();
  EXPECT_EQ(f2->tensors()[0].name, "l");
  EXPECT_EQ(f2->tensors()[3].name, "z");

  StatusOr<std::string> empty = SerializeSafetensors({});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->substr(8), "{}      ");
  StatusOr<SafetensorsFile> f3 = SafetensorsFile::FromBytes(*empty, "mem");
  ASSERT_TRUE(f3.ok()) << f3.status().ToString();
  EXPECT_TRUE(f3->tensors().empty());
}

TEST(Safetensors, WriterRejectsBadInput) {
  std::vector<float> two = {1.0f, 2.0f};
  auto reject = [](std::vector<TensorView> in, std::string part, std::map<std::string, std::string> meta = {}) {
    StatusOr<std::string> s = SerializeSafetensors(in, meta);
    ASSERT_FALSE(s.ok()) << part;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find(part), std::string::npos) << s.status().message();
  };
  reject({{"w", Dtype::kF32, {2}, Bytes(two)}, {"w", Dtype::kF32, {2}, Bytes(two)}}, "duplicate tensor name 'w'");
  reject({{"", Dtype::kF32, {2}, Bytes(two)}}, "empty name");
  reject({{"__metadata__", Dtype::kF32, {2}, Bytes(two)}}, "reserved");
  reject({{"w", Dtype::kF32, {3}, Bytes(two)}}, "tensor 'w': shape [3] of F32 needs 12 bytes, data has 8");
  reject({{"w", Dtype::kF32, {-1, -8}, Bytes(two)}}, "tensor 'w': bad shape");
  reject({{"bad\xff", Dtype::kF32, {2}, Bytes(two)}}, "not UTF-8");
  reject({}, "metadata entry 'k' is not UTF-8", {{"k", "\xc3"}});

  ScopedTempDir dir;
  Status s = WriteSafetensors(dir.path() / "x.safetensors", std::vector<TensorView>{{"w", Dtype::kF32, {3}, Bytes(two)}});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("x.safetensors"), std::string::npos) << s.message();
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  Status missing_dir = WriteSafetensors(dir.path() / "no" / "x.safetensors", {});
  EXPECT_EQ(missing_dir.code(), StatusCode::kIoError) << missing_dir.ToString();
}

TEST(Safetensors, ReadsHandWrittenHeaders) {
  // Whitespace, escapes, unknown fields, null metadata and zero-size tensors anywhere are valid.
  std::string buf(12, '\0');
  const float v[3] = {1.0f, 2.0f, 3.0f};
  std::memcpy(buf.data(), v, 12);
  std::string file = MakeFile(
      " {\"__metadata__\": null}", "");
  ExpectError(file, StatusCode::kDataLoss, {"does not start with '{'"});
  file = MakeFile(
      "{ \"__metadata__\" : null ,\n\t\"b\\u00e9\\ud83d\\ude00\": {\"dtype\":\"F32\",\"shape\":[3],"
      "\"data_offsets\":[0,12],\"extra\":[1,{\"x\":null}]},\"z\":{\"shape\":[0,5],\"dtype\":\"BF16\","
      "\"data_offsets\":[12,12]}, \"a\":{\"dtype\":\"I8\",\"shape\":[0],\"data_offsets\":[0,0]}}\r\n  ",
      buf);
  StatusOr<SafetensorsFile> f = SafetensorsFile::FromBytes(file, "hand");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_TRUE(f->metadata().empty());
  const TensorView* t = f->Find("b\u00e9\U0001F600");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Values<float>(*t), (std::vector<float>{1.0f, 2.0f, 3.0f}));
  ASSERT_NE(f->Find("z"), nullptr);
  EXPECT_EQ(f->Find("z")->shape, (std::vector<int64_t>{0, 5}));
  EXPECT_TRUE(f->Find("z")->data.empty());
  ASSERT_EQ(f->tensors().size(), 3u);
  EXPECT_EQ(f->tensors()[0].name, "a");  // file order: by offset
}

TEST(Safetensors, CorruptFilesAreErrorsNamingTheProblem) {
  const std::string f32x2 = "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":";
  std::string eight(8, '\0');
  std::string valid = MakeFile("{\"w\":" + f32x2 + "[0,8]}}", eight);
  ASSERT_TRUE(SafetensorsFile::FromBytes(valid, "ok").ok());

  ExpectError("", StatusCode::kDataLoss, {"0 bytes", "too short"});
  ExpectError(valid.substr(0, 5), StatusCode::kDataLoss, {"too short"});
  ExpectError(valid.substr(0, valid.size() - 1), StatusCode::kDataLoss, {"tensor 'w'", "out of range"});
  ExpectError(valid.substr(0, 20), StatusCode::kDataLoss, {"header length", "past the end of the file"});
  std::string huge = valid;
  uint64_t big = uint64_t{1} << 62;
  std::memcpy(huge.data(), &big, 8);
  ExpectError(huge, StatusCode::kDataLoss, {"exceeds", "cap"});
  ExpectError(MakeFile("{\"w\":" + f32x2 + "[0,8]", eight), StatusCode::kDataLoss, {"header JSON"});
  ExpectError(MakeFile("{\"w\":" + f32x2 + "[0,8]}} x", eight), StatusCode::kDataLoss, {"header JSON", "after"});
  ExpectError(MakeFile("{\"w\":" + f32x2 + "[0,8],}}", eight), StatusCode::kDataLoss, {"header JSON"});
  ExpectError(MakeFile("{\"w\":" + f32x2 + "[0,08]}}", eight), StatusCode::kDataLoss, {"header JSON"});
  ExpectError(MakeFile("{\"w\xff\":" + f32x2 + "[0,8]}}", eight), StatusCode::kDataLoss, {"not UTF-8"});
  ExpectError(MakeFile("[1]", ""), StatusCode::kDataLoss, {"start with '{'"});
  ExpectError(MakeFile("{\"w\":[1]}", ""), StatusCode::kDataLoss, {"tensor 'w'", "not an object"});
  ExpectError(MakeFile("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", "ab"),
              StatusCode::kDataLoss, {"tensor 'w'", "unknown dtype 'F8_E4M3'"});
  ExpectError(MakeFile("{\"w\":{\"dtype\":3,\"shape\":[2],\"data_offsets\":[0,8]}}", eight), StatusCode::kDataLoss,
              {"tensor 'w'", "'dtype' is not a string"});
  ExpectError(MakeFile("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", eight), StatusCode::kDataLoss,
              {"tensor 'w'", "missing 'dtype'"});
  ExpectError(MakeFile("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", eight),
              StatusCode::kDataLoss, {"tensor 'w'", "duplicate field 'dtype'"});
  ExpectError(MakeFile("{\"w\":" + f32x2 + "[0,16]}}", eight), StatusCode::kDataLoss,
              {"tensor 'w'", "data_offsets [0, 16] out of range", "8 bytes"});
  ExpectError(MakeFile("{\"w\":" + f32x2 + "[8,0]}}", eight), StatusCode::kDataLoss, {"tensor 'w'", "end before begin"});
  ExpectError(MakeFile("{\"w\":" + f32x2 + "[0,-8]}}", eight), StatusCode::kDataLoss, {"tensor 'w'", "data_offsets"});
  ExpectError(MakeFile("{\"w\":" + f32x2 + "[0,8.0]}}", eight), StatusCode::kDataLoss, {"tensor 'w'", "data_offsets"});
  ExpectError(MakeFile("{\"w\":" + f32x2 + "[0,8,9]}}", eight), StatusCode::kDataLoss, {"tensor 'w'", "data_offsets"});
  ExpectError(MakeFile("{\"w\":" + f32x2 + "[0,99999999999999999999999]}}", eight), StatusCode::kDataLoss,
              {"tensor 'w'", "data_offsets"});
  ExpectError(MakeFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", eight), StatusCode::kDataLoss,
              {"tensor 'w'", "shape [3] of F32 needs 12 bytes", "hold 8"});
  ExpectError(MakeFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", eight),
              StatusCode::kDataLoss, {"tensor 'w'", "shape entry '-2'"});
  ExpectError(MakeFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}",
                       eight),
              StatusCode::kDataLoss, {"tensor 'w'", "overflows"});
  ExpectError(MakeFile("{\"a\":" + f32x2 + "[0,8]},\"b\":" + f32x2 + "[4,12]}}", std::string(12, '\0')),
              StatusCode::kDataLoss, {"tensor 'b'", "overlap tensor 'a'"});
  ExpectError(MakeFile("{\"a\":" + f32x2 + "[0,8]},\"b\":" + f32x2 + "[0,8]}}", eight), StatusCode::kDataLoss,
              {"overlap tensor"});
  ExpectError(MakeFile("{\"a\":" + f32x2 + "[0,8]},\"b\":" + f32x2 + "[12,20]}}", std::string(20, '\0')),
              StatusCode::kDataLoss, {"tensor 'b'", "gap of 4 bytes"});
  ExpectError(MakeFile("{\"w\":" + f32x2 + "[0,8]}}", std::string(10, '\0')), StatusCode::kDataLoss,
              {"2 bytes after the last tensor"});
  ExpectError(MakeFile("{\"w\":" + f32x2 + "[0,8]},\"w\":" + f32x2 + "[8,16]}}", std::string(16, '\0')),
              StatusCode::kDataLoss, {"duplicate tensor name 'w'"});
  ExpectError(MakeFile("{\"__metadata__\":{\"k\":1},\"w\":" + f32x2 + "[0,8]}}", eight), StatusCode::kDataLoss,
              {"metadata 'k'", "not a string"});
  ExpectError(MakeFile("{\"__metadata__\":[],\"w\":" + f32x2 + "[0,8]}}", eight), StatusCode::kDataLoss,
              {"'__metadata__' is not an object"});
  ExpectError(MakeFile("{\"w\":" + std::string(5000, '[') + std::string(5000, ']') + "}", ""), StatusCode::kDataLoss,
              {"nesting deeper"});
  ExpectError(MakeFile("{\"w\\ud800\":1}", ""), StatusCode::kDataLoss, {"surrogate"});
  ExpectError(MakeFile("{\"w\x01\":1}", ""), StatusCode::kDataLoss, {"control character"});

  // Open() names the path, and a missing file is NotFound.
  ScopedTempDir dir;
  ASSERT_TRUE(AtomicWriteFile(dir.path() / "bad.safetensors", valid.substr(0, valid.size() - 3)).ok());
  StatusOr<SafetensorsFile> bad = SafetensorsFile::Open(dir.path() / "bad.safetensors");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find((dir.path() / "bad.safetensors").string()), std::string::npos);
  EXPECT_EQ(SafetensorsFile::Open(dir.path() / "none.safetensors").status().code(), StatusCode::kNotFound);
}

// Every byte flip and every truncation of a small valid file is an error or a consistent read,
// never a crash or a view outside the file (run under ASan to make the last part bite).
TEST(Safetensors, ByteFlipAndTruncationSweep) {
  std::vector<float> a = {1.0f, 2.0f, 3.0f};
  std::vector<uint16_t> b = {0x3C00, 0x4000};
  std::vector<uint8_t> c = {1, 0};
  std::vector<int64_t> d = {7};
  std::vector<TensorView> in = {{"a", Dtype::kF32, {3}, Bytes(a)},
                                {"b", Dtype::kBF16, {1, 2}, Bytes(b)},
                                {"c", Dtype::kBool, {2}, Bytes(c)},
                                {"s", Dtype::kI64, {}, Bytes(d)},
                                {"e", Dtype::kF16, {0, 4}, {}}};
  StatusOr<std::string> valid = SerializeSafetensors(in, {{"k", "v"}});
  ASSERT_TRUE(valid.ok());
  auto check = [](const std::string& bytes, int* oks) {
    StatusOr<SafetensorsFile> f = SafetensorsFile::FromBytes(bytes, "sweep");
    if (!f.ok()) {
      EXPECT_NE(f.status().message().find("sweep"), std::string::npos);
      return;
    }
    ++*oks;
    uint64_t total = 0, sum = 0;
    for (const TensorView& t : f->tensors()) {
      std::optional<Dtype> d = ParseDtype(DtypeName(t.dtype));
      ASSERT_TRUE(d.has_value());
      ASSERT_EQ(static_cast<uint64_t>(t.numel()) * DtypeSize(t.dtype), t.data.size()) << t.name;
      for (std::byte x : t.data) sum += static_cast<uint64_t>(x);  // touches every byte of the view
      total += t.data.size();
    }
    EXPECT_LE(total, bytes.size());
    (void)sum;
  };
  int oks = 0;
  for (size_t i = 0; i < valid->size(); ++i) {
    for (unsigned mask : {0x01u, 0x02u, 0x10u, 0x20u, 0x80u, 0xFFu}) {
      std::string bytes = *valid;
      bytes[i] = static_cast<char>(static_cast<unsigned char>(bytes[i]) ^ mask);
      check(bytes, &oks);
    }
  }
  for (size_t len = 0; len < valid->size(); ++len) {
    int before = oks;
    check(valid->substr(0, len), &oks);
    EXPECT_EQ(oks, before) << "a truncation to " << len << " bytes read as valid";
  }
  // Flips in the data buffer keep the file valid; flips in the header mostly do not.
  EXPECT_GT(oks, 0);
  EXPECT_LT(oks, static_cast<int>(valid->size() * 6));
}

TEST(Safetensors, HalfConversions) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3C00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xC000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7BFF);
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7BFF);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7C00);  // the tie goes to even: infinity
  EXPECT_EQ(FloatToHalf(1e9f), 0x7C00);
  EXPECT_EQ(FloatToHalf(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // least subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // exactly half of it: ties to even (0)
  EXPECT_EQ(FloatToHalf(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(FloatToHalf(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 ulp: ties to even (2)
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -14)), 0x0400);  // least normal
  EXPECT_EQ(FloatToHalf(std::ldexp(1023.5f, -24)), 0x0400);  // rounds up from subnormal into normal
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie -> even (down)
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(3.0f, -11)), 0x3C02);      // tie -> even (up)
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3C01);
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(std::bit_cast<float>(0x7F800001u)))));  // signalling, low payload
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  // Every non-NaN half survives half -> float -> half, and the float is exact.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      ASSERT_EQ(h & 0x7C00, 0x7C00u);
      ASSERT_NE(h & 0x3FF, 0u);
      continue;
    }
    ASSERT_EQ(FloatToHalf(f), h) << std::hex << h;
  }
}

TEST(Safetensors, BFloat16Conversions) {
  EXPECT_EQ(FloatToBFloat16(1.0f), 0x3F80);
  EXPECT_EQ(FloatToBFloat16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);  // tie -> even (down)
  EXPECT_EQ(FloatToBFloat16(1.0f + std::ldexp(3.0f, -8)), 0x3F82);  // tie -> even (up)
  EXPECT_EQ(FloatToBFloat16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 0x3F81);
  EXPECT_EQ(FloatToBFloat16(std::numeric_limits<float>::max()), 0x7F80);  // rounds to infinity
  EXPECT_EQ(FloatToBFloat16(-0.0f), 0x8000);
  EXPECT_EQ(FloatToBFloat16(std::bit_cast<float>(0x00000001u)), 0x0000);  // float subnormal
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(std::bit_cast<float>(0x7F800001u)))));
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(std::bit_cast<float>(0xFFFFFFFFu)))));
  EXPECT_EQ(BFloat16ToFloat(0x4049), 3.140625f);
  for (uint32_t b = 0; b < 0x10000; ++b) {
    float f = BFloat16ToFloat(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToBFloat16(f), b) << std::hex << b;
  }
}

}  // namespace
}  // namespace adrec
