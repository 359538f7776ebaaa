// The binary column file of a dataset directory (DESIGN.md "Dataset directory").
//
// Layout (little-endian):
//   header   32 B   magic "ADRECCOL", u32 version, u32 file kind, u32 block count, u32 flags,
//                   u64 XXH3 of the first 24 bytes
//   block*   80 B   "BLCK", u8 block type, u8 codec (1 = zstd), u16 name length, u32 part count,
//                   u32 reserved, u64 rows, u64 part bytes[4], u64 stored bytes, u64 XXH3 of the
//                   stored payload, u64 XXH3 of this header and the name
//            name, then the parts back to back, cut into zstd frames of ≤ 4 MiB decompressed
//            (each records its content size), so one large column decodes on all cores
//   trailer  32 B   u64 block count, u64 file size, u64 XXH3 over all block hashes, "ADRECEND"
// The first 32 bytes keep this layout in every version, so a newer file is recognised as such.
// Readers bound every length by the bytes present (and by what the zstd frame can expand to)
// before allocating, so a corrupt or hostile file is an error, never a crash or a huge alloc.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adrec/core/status.h"
#include "adrec/data/dataset.h"

namespace adrec {
class ThreadPool;
}

namespace adrec::data {

inline constexpr uint32_t kColumnFileVersion = 1;
inline constexpr size_t kColumnFileHeaderBytes = 32;
inline constexpr size_t kBlockHeaderBytes = 80;
inline constexpr size_t kColumnFileTrailerBytes = 32;
// Largest decompressed block a reader accepts: far above any real column, far below what a
// corrupt length field could ask for.
inline constexpr uint64_t kMaxBlockBytes = uint64_t{1} << 40;
inline constexpr size_t kMaxBlockNameBytes = 4096;
inline constexpr uint32_t kMaxBlocksPerFile = 1u << 16;

// Which file of the dataset directory this is; a file renamed over another is caught.
enum class FileKind : uint32_t {
  kEvents = 1,
  kUsers = 2,
  kItems = 3,
  kEventFeatures = 4,
  kTaxonomy = 5,
};
std::string_view FileKindName(FileKind k);
StatusOr<FileKind> ParseFileKind(std::string_view name);

// How a block's decompressed bytes are laid out: up to four parts back to back, each an array of
// one element type. Table columns map one-to-one from ColumnType; categorical blocks carry their
// vocabulary.
enum class BlockType : uint8_t {
  kU8 = 0,                // u8[rows]
  kU32 = 1,               // u32[rows]
  kU64 = 2,               // u64[rows]
  kF32 = 3,               // f32[rows]
  kStrings = 4,           // u64 offsets[rows+1], bytes
  kCategorical = 5,       // u32 codes[rows], vocab u64 offsets[v+1], vocab bytes
  kCategoricalList = 6,   // u64 offsets[rows+1], u32 codes, vocab u64 offsets[v+1], vocab bytes
  kSparseVector = 7,      // u64 offsets[rows+1], u32 indices, f32 values
};
inline constexpr int kNumBlockTypes = 8;
std::string_view BlockTypeName(BlockType t);
StatusOr<BlockType> ParseBlockType(std::string_view name);
BlockType BlockTypeOfColumn(ColumnType t);
// The table column type a block type stores; kU8/kU64 are not table columns.
StatusOr<ColumnType> ColumnTypeOfBlock(BlockType t);

// What a writer produced, for dataset.toml's file list.
struct BlockEntry {
  std::string name;
  BlockType type = BlockType::kU8;
};

// Builds one column file in memory. The Add* calls keep pointers, not copies: the data must
// stay alive and unchanged until Finish returns.
class ColumnFileWriter {
 public:
  ColumnFileWriter(FileKind kind, int zstd_level);
  ~ColumnFileWriter();
  ColumnFileWriter(ColumnFileWriter&&) noexcept;
  ColumnFileWriter& operator=(ColumnFileWriter&&) noexcept;

  void AddU8(std::string name, std::span<const uint8_t> v);
  void AddU32(std::string name, std::span<const uint32_t> v);
  void AddU64(std::string name, std::span<const uint64_t> v);
  void AddF32(std::string name, std::span<const float> v);
  void AddStrings(std::string name, const std::vector<std::string>& v);
  // Stored under the column's name with its vocabulary (categorical types).
  void AddColumn(const Column& c);

  std::vector<BlockEntry> Blocks() const;
  // Compresses every block (in parallel on `pool` when given) and returns the file's bytes.
  StatusOr<std::string> Finish(ThreadPool* pool) &&;

 private:
  struct Source;
  FileKind kind_;
  int level_;
  std::vector<Source> sources_;
};

struct ColumnFileReadOptions {
  // Off only for fuzzing the decoders behind the checksums; structural checks stay on.
  bool verify_checksums = true;
};

// One block as found in a file; `stored` points into the caller's file buffer.
struct BlockInfo {
  std::string name;
  BlockType type = BlockType::kU8;
  uint64_t rows = 0;
  std::array<uint64_t, 4> part_bytes{};
  std::string_view stored;
  uint64_t payload_hash = 0;
  uint64_t raw_bytes() const { return part_bytes[0] + part_bytes[1] + part_bytes[2] + part_bytes[3]; }
};

struct ColumnFileIndex {
  FileKind kind = FileKind::kEvents;
  std::vector<BlockInfo> blocks;
};

// Checks the header (magic, version, kind), every block header and the trailer of a file held
// in memory, without decompressing. `file` names the file in errors. Wrong magic, truncation and
// corruption are DataLoss; another format version is FailedPrecondition.
StatusOr<ColumnFileIndex> ParseColumnFile(std::string_view bytes, FileKind expected, std::string_view file,
                                          const ColumnFileReadOptions& options = {});

// One zstd frame of a block: bytes [src_offset, +src_bytes) of `stored` decompress to bytes
// [dst_offset, +dst_bytes) of the block's parts laid back to back.
struct FrameRef {
  uint64_t src_offset = 0;
  uint64_t src_bytes = 0;
  uint64_t dst_offset = 0;
  uint64_t dst_bytes = 0;
};
// Checks a block's payload before anything is allocated for it (checksum; complete frames whose
// sizes add up to the header's) and lists its frames.
StatusOr<std::vector<FrameRef>> VerifyBlockPayload(const BlockInfo& b, std::string_view file,
                                                   const ColumnFileReadOptions& o = {});
// Decompresses one verified frame into `dst` (dst_bytes long); frames decode independently, so
// callers may spread them over threads.
Status DecompressFrame(const BlockInfo& b, const FrameRef& f, std::span<std::byte> dst, std::string_view file);

// Decompress one block into typed outputs after checking its checksum and internal consistency
// (offsets monotone and in range, sizes matching the type). Errors name the file and block.
Status DecodeU8(const BlockInfo& b, std::string_view file, std::vector<uint8_t>* out, const ColumnFileReadOptions& o = {});
Status DecodeU32(const BlockInfo& b, std::string_view file, std::vector<uint32_t>* out, const ColumnFileReadOptions& o = {});
Status DecodeU64(const BlockInfo& b, std::string_view file, std::vector<uint64_t>* out, const ColumnFileReadOptions& o = {});
Status DecodeF32(const BlockInfo& b, std::string_view file, std::vector<float>* out, const ColumnFileReadOptions& o = {});
Status DecodeStrings(const BlockInfo& b, std::string_view file, std::vector<std::string>* out,
                     const ColumnFileReadOptions& o = {});
// Fills name, type, data and a fresh vocabulary.
Status DecodeColumn(const BlockInfo& b, std::string_view file, Column* out, const ColumnFileReadOptions& o = {});

// Parses and decodes every block of a file held in memory as table columns or raw arrays (a
// fuzzing and debugging entry point that needs no dataset.toml).
Status DecodeColumnFileForTest(std::string_view bytes, std::string_view file, const ColumnFileReadOptions& o = {});

}  // namespace adrec::data
