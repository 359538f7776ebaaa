// The safetensors file format (https://github.com/huggingface/safetensors), torch-free:
//   8-byte little-endian header length N, N bytes of JSON header
//   {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}},
//   then the byte buffer the offsets index. Model bundles store their weights in it and Hugging
// Face publishes weights in it; tensor_io.h converts to and from torch::Tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adrec/core/file.h"
#include "adrec/core/status.h"

namespace adrec {

// The dtypes adrec reads and writes (the reference library also has U16..U64 and float8 kinds,
// which no model we load uses: they are rejected with a message naming them).
enum class Dtype { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

std::string_view DtypeName(Dtype dtype);  // "F32"
size_t DtypeSize(Dtype dtype);            // bytes per element
std::optional<Dtype> ParseDtype(std::string_view name);

// One tensor: row-major, little-endian bytes. `data` may be unaligned for its dtype (the format
// packs tensors back to back), so read elements with memcpy, not by casting the pointer.
struct TensorView {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<int64_t> shape;  // empty: a 0-d scalar
  std::span<const std::byte> data;

  int64_t numel() const;
};

// Limits on what a reader accepts before allocating anything.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;  // the reference library's cap
inline constexpr size_t kMaxSafetensorsRank = 64;

// A validated, read-only safetensors file. Views point into its memory (an mmap for Open), so
// they live as long as the SafetensorsFile.
class SafetensorsFile {
 public:
  // Maps `path` and validates the whole header before any view is handed out; every problem is
  // DataLoss naming the file and, where one is involved, the tensor.
  static StatusOr<SafetensorsFile> Open(const std::filesystem::path& path);
  // The same validation over bytes already in memory (copied in; tests, network payloads).
  // `source` names them in error messages.
  static StatusOr<SafetensorsFile> FromBytes(std::string_view bytes, std::string source);

  SafetensorsFile(SafetensorsFile&&) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept = default;

  const std::string& source() const { return source_; }
  // In file order (by data offset).
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // nullptr when absent.
  const TensorView* Find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  static StatusOr<SafetensorsFile> Parse(SafetensorsFile file, std::string_view bytes);

  std::string source_;
  std::optional<MappedFile> mapping_;
  std::unique_ptr<std::string> owned_;  // FromBytes: a heap string, so moves keep views valid
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` atomically (temp file beside `path`, fsync, rename, fsync of the directory),
// streaming the data (no copy of the whole file in memory). Like Python's safetensors, the data
// is ordered by element size (largest first), then by name, so every tensor is aligned to its
// element size, and the header is padded with spaces to a multiple of 8 bytes; the bytes match
// what Python's safetensors.save writes for the same tensors and metadata (one metadata entry;
// with more, Python's key order is a hash order). Names must be unique, non-empty, valid UTF-8
// and not "__metadata__"; each `data` must hold exactly numel × element size bytes.
Status WriteSafetensors(const std::filesystem::path& path, std::span<const TensorView> tensors,
                        const std::map<std::string, std::string>& metadata = {});

// The serialised file as bytes (what WriteSafetensors writes; for tests and small payloads).
StatusOr<std::string> SerializeSafetensors(std::span<const TensorView> tensors,
                                           const std::map<std::string, std::string>& metadata = {});

// "[3, 16]": tensor shapes in error messages (torch sizes convert: ShapeString(t.sizes())).
std::string ShapeString(std::span<const int64_t> shape);

// IEEE binary16 and bfloat16 <-> binary32. To-16 conversions round to nearest, ties to even;
// NaN stays NaN (quiet), infinities and signed zeros are kept, binary16 overflow gives infinity.
float HalfToFloat(uint16_t bits);
uint16_t FloatToHalf(float value);
float BFloat16ToFloat(uint16_t bits);
uint16_t FloatToBFloat16(float value);

}  // namespace adrec
