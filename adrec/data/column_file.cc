#include "adrec/data/column_file.h"

#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_decompressBound: bounds allocations by the frame itself
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <limits>
#include <memory>

#include "adrec/core/hash.h"
#include "adrec/core/thread_pool.h"

namespace adrec::data {

static_assert(std::endian::native == std::endian::little, "column files are little-endian; add byte swaps here");

namespace {

constexpr char kFileMagic[8] = {'A', 'D', 'R', 'E', 'C', 'C', 'O', 'L'};
constexpr char kEndMagic[8] = {'A', 'D', 'R', 'E', 'C', 'E', 'N', 'D'};
constexpr char kBlockMagic[4] = {'B', 'L', 'C', 'K'};
constexpr uint8_t kCodecZstd = 1;
// Above this ratio of decompressed to stored bytes a block's size is proven by decoding it before
// anything that large is allocated.
constexpr uint64_t kTrustedExpansion = 64;
// A zstd block expands to at most 128 KiB and costs at least 4 stored bytes.
constexpr uint64_t kMaxZstdExpansion = 32 * 1024;
// Blocks are cut into independent zstd frames of this many decompressed bytes, so one large
// column is compressed and decompressed on all cores.
constexpr uint64_t kFrameBytes = uint64_t{4} << 20;

constexpr std::string_view kBlockTypeNames[kNumBlockTypes] = {
    "u8", "u32", "u64", "f32", "strings", "categorical", "categorical_list", "sparse_vector"};

// Element size of each part of a block type; 0 = no such part.
constexpr std::array<size_t, 4> PartElemBytes(BlockType t) {
  switch (t) {
    case BlockType::kU8: return {1, 0, 0, 0};
    case BlockType::kU32: return {4, 0, 0, 0};
    case BlockType::kU64: return {8, 0, 0, 0};
    case BlockType::kF32: return {4, 0, 0, 0};
    case BlockType::kStrings: return {8, 1, 0, 0};
    case BlockType::kCategorical: return {4, 8, 1, 0};
    case BlockType::kCategoricalList: return {8, 4, 8, 1};
    case BlockType::kSparseVector: return {8, 4, 4, 0};
  }
  return {0, 0, 0, 0};
}

uint32_t PartCount(BlockType t) {
  auto e = PartElemBytes(t);
  return static_cast<uint32_t>(std::count_if(e.begin(), e.end(), [](size_t s) { return s != 0; }));
}

template <typename T>
void Put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

template <typename T>
T Get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

std::string_view AsChars(const void* p, size_t n) { return {static_cast<const char*>(p), n}; }

// Serialised strings: u64 offsets[n+1] and the bytes, both owned.
struct StringParts {
  std::vector<uint64_t> offsets;
  std::string bytes;
};
StringParts EncodeStrings(const std::vector<std::string>& v) {
  StringParts p;
  p.offsets.reserve(v.size() + 1);
  size_t total = 0;
  for (const auto& s : v) total += s.size();
  p.bytes.reserve(total);
  p.offsets.push_back(0);
  for (const auto& s : v) {
    p.bytes += s;
    p.offsets.push_back(p.bytes.size());
  }
  return p;
}

std::string BlockContext(std::string_view file, std::string_view block) {
  return std::string(file) + ": column '" + std::string(block) + "'";
}

Status Corrupt(std::string_view file, std::string_view what) {
  return DataLossError(std::string(file) + ": " + std::string(what));
}

}  // namespace

std::string_view FileKindName(FileKind k) {
  switch (k) {
    case FileKind::kEvents: return "events";
    case FileKind::kUsers: return "users";
    case FileKind::kItems: return "items";
    case FileKind::kEventFeatures: return "event_features";
    case FileKind::kTaxonomy: return "taxonomy";
  }
  return "unknown";
}

StatusOr<FileKind> ParseFileKind(std::string_view name) {
  for (uint32_t k = 1; k <= 5; ++k) {
    if (FileKindName(static_cast<FileKind>(k)) == name) return static_cast<FileKind>(k);
  }
  return InvalidArgumentError("unknown file kind '" + std::string(name) + "'");
}

std::string_view BlockTypeName(BlockType t) {
  auto i = static_cast<size_t>(t);
  return i < kNumBlockTypes ? kBlockTypeNames[i] : "unknown";
}

StatusOr<BlockType> ParseBlockType(std::string_view name) {
  for (int i = 0; i < kNumBlockTypes; ++i) {
    if (kBlockTypeNames[i] == name) return static_cast<BlockType>(i);
  }
  return InvalidArgumentError("unknown block type '" + std::string(name) + "'");
}

BlockType BlockTypeOfColumn(ColumnType t) {
  switch (t) {
    case ColumnType::kCategorical: return BlockType::kCategorical;
    case ColumnType::kUInt32: return BlockType::kU32;
    case ColumnType::kFloat32: return BlockType::kF32;
    case ColumnType::kString: return BlockType::kStrings;
    case ColumnType::kCategoricalList: return BlockType::kCategoricalList;
    case ColumnType::kSparseVector: return BlockType::kSparseVector;
  }
  return BlockType::kU8;
}

StatusOr<ColumnType> ColumnTypeOfBlock(BlockType t) {
  switch (t) {
    case BlockType::kCategorical: return ColumnType::kCategorical;
    case BlockType::kU32: return ColumnType::kUInt32;
    case BlockType::kF32: return ColumnType::kFloat32;
    case BlockType::kStrings: return ColumnType::kString;
    case BlockType::kCategoricalList: return ColumnType::kCategoricalList;
    case BlockType::kSparseVector: return ColumnType::kSparseVector;
    default: break;
  }
  return InvalidArgumentError("block type " + std::string(BlockTypeName(t)) + " is not a table column type");
}

// ---------------------------------------------------------------------------------------------
// Writer

struct ColumnFileWriter::Source {
  std::string name;
  BlockType type = BlockType::kU8;
  uint64_t rows = 0;
  std::string_view array;                      // plain arrays
  const std::vector<std::string>* strings = nullptr;  // kStrings
  const Column* column = nullptr;              // table columns
};

ColumnFileWriter::ColumnFileWriter(FileKind kind, int zstd_level) : kind_(kind), level_(zstd_level) {}
ColumnFileWriter::~ColumnFileWriter() = default;
ColumnFileWriter::ColumnFileWriter(ColumnFileWriter&&) noexcept = default;
ColumnFileWriter& ColumnFileWriter::operator=(ColumnFileWriter&&) noexcept = default;

void ColumnFileWriter::AddU8(std::string name, std::span<const uint8_t> v) {
  sources_.push_back({std::move(name), BlockType::kU8, v.size(), AsChars(v.data(), v.size_bytes()), nullptr, nullptr});
}
void ColumnFileWriter::AddU32(std::string name, std::span<const uint32_t> v) {
  sources_.push_back({std::move(name), BlockType::kU32, v.size(), AsChars(v.data(), v.size_bytes()), nullptr, nullptr});
}
void ColumnFileWriter::AddU64(std::string name, std::span<const uint64_t> v) {
  sources_.push_back({std::move(name), BlockType::kU64, v.size(), AsChars(v.data(), v.size_bytes()), nullptr, nullptr});
}
void ColumnFileWriter::AddF32(std::string name, std::span<const float> v) {
  sources_.push_back({std::move(name), BlockType::kF32, v.size(), AsChars(v.data(), v.size_bytes()), nullptr, nullptr});
}
void ColumnFileWriter::AddStrings(std::string name, const std::vector<std::string>& v) {
  sources_.push_back({std::move(name), BlockType::kStrings, v.size(), {}, &v, nullptr});
}
void ColumnFileWriter::AddColumn(const Column& c) {
  sources_.push_back({c.name, BlockTypeOfColumn(c.type), c.rows(), {}, nullptr, &c});
}

std::vector<BlockEntry> ColumnFileWriter::Blocks() const {
  std::vector<BlockEntry> out;
  for (const auto& s : sources_) out.push_back({s.name, s.type});
  return out;
}

namespace {

// A block being written: its parts (pointing into the caller's data or the owned buffers here)
// and its compressed frames. Never moved once prepared: parts may point into sp/vocab.
struct PreparedBlock {
  std::vector<std::string_view> parts;
  StringParts sp, vocab;
  uint64_t raw = 0;
  std::vector<std::string> frames;
  std::vector<Status> frame_status;
};

// Compresses bytes [begin, begin + len) of the parts' concatenation into one zstd frame that
// records its content size.
Status CompressRange(const std::vector<std::string_view>& parts, uint64_t begin, uint64_t len, int level,
                     std::string* out) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!cctx) return ResourceExhaustedError("zstd: cannot create a compression context");
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 0);  // XXH3 over the payload already
  ZSTD_CCtx_setPledgedSrcSize(cctx.get(), len);
  out->resize(ZSTD_compressBound(len) + 64);
  ZSTD_outBuffer ob{out->data(), out->size(), 0};
  auto step = [&](ZSTD_inBuffer* ib, ZSTD_EndDirective mode) -> StatusOr<size_t> {
    if (ob.pos == ob.size) {
      out->resize(out->size() * 2);
      ob.dst = out->data();
      ob.size = out->size();
    }
    size_t r = ZSTD_compressStream2(cctx.get(), &ob, ib, mode);
    if (ZSTD_isError(r)) return InternalError(std::string("zstd compression failed: ") + ZSTD_getErrorName(r));
    return r;
  };
  uint64_t part_begin = 0;
  for (auto p : parts) {
    const uint64_t part_end = part_begin + p.size();
    const uint64_t from = std::max(part_begin, begin), to = std::min(part_end, begin + len);
    if (from < to) {
      ZSTD_inBuffer ib{p.data() + (from - part_begin), to - from, 0};
      while (ib.pos < ib.size) ADREC_RETURN_IF_ERROR(step(&ib, ZSTD_e_continue).status());
    }
    part_begin = part_end;
  }
  ZSTD_inBuffer none{nullptr, 0, 0};
  while (true) {
    ADREC_ASSIGN_OR_RETURN(size_t left, step(&none, ZSTD_e_end));
    if (left == 0) break;
  }
  out->resize(ob.pos);
  return Status::Ok();
}

// Block header + name (the payload follows it in the file).
std::string BlockHeader(const std::string& name, BlockType type, uint64_t rows, const std::vector<std::string_view>& parts,
                        uint64_t stored, uint64_t payload_hash) {
  std::string h;
  h.append(kBlockMagic, 4);
  Put<uint8_t>(h, static_cast<uint8_t>(type));
  Put<uint8_t>(h, kCodecZstd);
  Put<uint16_t>(h, static_cast<uint16_t>(name.size()));
  Put<uint32_t>(h, PartCount(type));
  Put<uint32_t>(h, 0);
  Put<uint64_t>(h, rows);
  for (size_t i = 0; i < 4; ++i) Put<uint64_t>(h, i < parts.size() ? parts[i].size() : 0);
  Put<uint64_t>(h, stored);
  Put<uint64_t>(h, payload_hash);
  uint64_t hh = Hash64(h.data(), h.size(), Hash64(name));
  Put<uint64_t>(h, hh);
  h += name;
  return h;
}

std::string_view U32Bytes(const std::vector<uint32_t>& v) { return AsChars(v.data(), v.size() * 4); }
std::string_view U64Bytes(const std::vector<uint64_t>& v) { return AsChars(v.data(), v.size() * 8); }
std::string_view F32Bytes(const std::vector<float>& v) { return AsChars(v.data(), v.size() * 4); }

// Runs fn(i) for i in [0, n) on the pool when there is one, else inline.
void RunTasks(ThreadPool* pool, size_t n, const std::function<void(size_t)>& fn) {
  if (pool == nullptr || pool->size() <= 1 || n <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  // One slot per thread, each pulling tasks, so big blocks do not queue behind each other.
  pool->ParallelFor(std::min(n, pool->size() + 1), [&](size_t b, size_t e) {
    for (size_t slot = b; slot < e; ++slot) {
      for (size_t t; (t = next.fetch_add(1)) < n;) fn(t);
    }
  });
}

}  // namespace

StatusOr<std::string> ColumnFileWriter::Finish(ThreadPool* pool) && {
  if (sources_.size() > kMaxBlocksPerFile) return InvalidArgumentError("too many columns in one file");
  for (const auto& s : sources_) {
    if (s.name.size() > kMaxBlockNameBytes) return InvalidArgumentError("column name longer than 4096 bytes");
  }
  // 1: lay out each block's parts (strings and vocabularies are serialised here, in parallel).
  std::vector<PreparedBlock> blocks(sources_.size());
  RunTasks(pool, sources_.size(), [&](size_t i) {
    const Source& s = sources_[i];
    PreparedBlock& pb = blocks[i];
    static const std::vector<std::string> kNoNames;
    if (s.strings != nullptr) {
      pb.sp = EncodeStrings(*s.strings);
      pb.parts = {U64Bytes(pb.sp.offsets), pb.sp.bytes};
    } else if (s.column != nullptr) {
      const Column& c = *s.column;
      const auto& names = c.vocab ? c.vocab->names() : kNoNames;
      switch (c.type) {
        case ColumnType::kCategorical:
          pb.vocab = EncodeStrings(names);
          pb.parts = {U32Bytes(c.u32), U64Bytes(pb.vocab.offsets), pb.vocab.bytes};
          break;
        case ColumnType::kUInt32: pb.parts = {U32Bytes(c.u32)}; break;
        case ColumnType::kFloat32: pb.parts = {F32Bytes(c.f32)}; break;
        case ColumnType::kString:
          pb.sp = EncodeStrings(c.str);
          pb.parts = {U64Bytes(pb.sp.offsets), pb.sp.bytes};
          break;
        case ColumnType::kCategoricalList:
          pb.vocab = EncodeStrings(names);
          pb.parts = {U64Bytes(c.offsets), U32Bytes(c.u32), U64Bytes(pb.vocab.offsets), pb.vocab.bytes};
          break;
        case ColumnType::kSparseVector: pb.parts = {U64Bytes(c.offsets), U32Bytes(c.u32), F32Bytes(c.f32)}; break;
      }
    } else {
      pb.parts = {s.array};
    }
    for (auto p : pb.parts) pb.raw += p.size();
    const size_t nframes = std::max<uint64_t>(1, (pb.raw + kFrameBytes - 1) / kFrameBytes);
    pb.frames.resize(nframes);
    pb.frame_status.resize(nframes);
  });
  // 2: compress every frame of every block in parallel, so one big column uses every core.
  std::vector<std::pair<size_t, size_t>> frames;
  for (size_t i = 0; i < blocks.size(); ++i) {
    for (size_t k = 0; k < blocks[i].frames.size(); ++k) frames.emplace_back(i, k);
  }
  RunTasks(pool, frames.size(), [&](size_t t) {
    auto [i, k] = frames[t];
    PreparedBlock& pb = blocks[i];
    const uint64_t begin = k * kFrameBytes;
    pb.frame_status[k] = CompressRange(pb.parts, begin, std::min(kFrameBytes, pb.raw - begin), level_, &pb.frames[k]);
  });
  // 3: assemble.
  std::vector<std::string> headers(blocks.size());
  size_t total = kColumnFileHeaderBytes + kColumnFileTrailerBytes;
  std::vector<uint64_t> chain;
  for (size_t i = 0; i < blocks.size(); ++i) {
    PreparedBlock& pb = blocks[i];
    uint64_t stored = 0;
    StreamingHash64 h;
    for (size_t k = 0; k < pb.frames.size(); ++k) {
      if (!pb.frame_status[k].ok()) return pb.frame_status[k].WithContext("column '" + sources_[i].name + "'");
      stored += pb.frames[k].size();
      h.Update(pb.frames[k].data(), pb.frames[k].size());
    }
    const uint64_t payload_hash = h.Digest();
    headers[i] = BlockHeader(sources_[i].name, sources_[i].type, sources_[i].rows, pb.parts, stored, payload_hash);
    chain.push_back(payload_hash);
    chain.push_back(Get<uint64_t>(headers[i].data() + 72));
    total += headers[i].size() + stored;
  }
  std::string out;
  out.reserve(total);
  out.append(kFileMagic, 8);
  Put<uint32_t>(out, kColumnFileVersion);
  Put<uint32_t>(out, static_cast<uint32_t>(kind_));
  Put<uint32_t>(out, static_cast<uint32_t>(blocks.size()));
  Put<uint32_t>(out, 0);
  Put<uint64_t>(out, Hash64(out.data(), out.size()));
  for (size_t i = 0; i < blocks.size(); ++i) {
    out += headers[i];
    for (auto& f : blocks[i].frames) {
      out += f;
      std::string().swap(f);  // release as we go: peak memory stays near one copy
    }
  }
  std::string trailer;
  Put<uint64_t>(trailer, blocks.size());
  Put<uint64_t>(trailer, total);
  Put<uint64_t>(trailer, Hash64(chain.data(), chain.size() * 8, Hash64(trailer.data(), 16)));
  trailer.append(kEndMagic, 8);
  out += trailer;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reader

StatusOr<ColumnFileIndex> ParseColumnFile(std::string_view bytes, FileKind expected, std::string_view file,
                                          const ColumnFileReadOptions& options) {
  const size_t size = bytes.size();
  const char* p = bytes.data();
  if (size < 8 || std::memcmp(p, kFileMagic, 8) != 0) {
    // string_view compares an empty file's null data safely; memcmp(nullptr, …, 0) is undefined.
    if (size < 8 && bytes == std::string_view(kFileMagic, size)) {
      return Corrupt(file, "truncated: " + std::to_string(size) + " bytes, shorter than the header");
    }
    return Corrupt(file, "not an adrec column file (wrong magic bytes)");
  }
  if (size < kColumnFileHeaderBytes) {
    return Corrupt(file, "truncated: " + std::to_string(size) + " bytes, shorter than the header");
  }
  if (options.verify_checksums && Hash64(p, 24) != Get<uint64_t>(p + 24)) {
    return Corrupt(file, "header checksum mismatch (the file is corrupt)");
  }
  const uint32_t version = Get<uint32_t>(p + 8);
  if (version != kColumnFileVersion) {
    return FailedPreconditionError(std::string(file) + ": column file format version " + std::to_string(version) +
                                   (version > kColumnFileVersion ? " is newer than" : " is not") +
                                   " the version this build reads (" + std::to_string(kColumnFileVersion) +
                                   "); rewrite the dataset with this adrec or upgrade adrec");
  }
  const uint32_t kind = Get<uint32_t>(p + 12);
  if (kind != static_cast<uint32_t>(expected)) {
    std::string got = (kind >= 1 && kind <= 5) ? std::string(FileKindName(static_cast<FileKind>(kind)))
                                               : "unknown kind " + std::to_string(kind);
    return Corrupt(file, "holds a " + got + " file, expected " + std::string(FileKindName(expected)));
  }
  const uint32_t num_blocks = Get<uint32_t>(p + 16);
  if (num_blocks > kMaxBlocksPerFile) return Corrupt(file, "block count " + std::to_string(num_blocks) + " is corrupt");
  if (Get<uint32_t>(p + 20) != 0) return Corrupt(file, "unknown header flags (the file is corrupt)");
  if (size < kColumnFileHeaderBytes + kColumnFileTrailerBytes ||
      std::memcmp(p + size - 8, kEndMagic, 8) != 0) {
    return Corrupt(file, "truncated: the end marker is missing (" + std::to_string(size) + " bytes)");
  }
  const char* t = p + size - kColumnFileTrailerBytes;
  if (Get<uint64_t>(t) != num_blocks || Get<uint64_t>(t + 8) != size) {
    return Corrupt(file, "trailer says " + std::to_string(Get<uint64_t>(t + 8)) + " bytes and " +
                             std::to_string(Get<uint64_t>(t)) + " blocks, file has " + std::to_string(size) +
                             " bytes and " + std::to_string(num_blocks) + " blocks (truncated or corrupt)");
  }
  const size_t body_end = size - kColumnFileTrailerBytes;
  size_t pos = kColumnFileHeaderBytes;
  ColumnFileIndex index;
  index.kind = expected;
  index.blocks.reserve(num_blocks);
  std::vector<uint64_t> chain;
  chain.reserve(2 * static_cast<size_t>(num_blocks));
  for (uint32_t i = 0; i < num_blocks; ++i) {
    std::string where = "block " + std::to_string(i);
    if (body_end - pos < kBlockHeaderBytes) return Corrupt(file, where + ": truncated header");
    const char* h = p + pos;
    if (std::memcmp(h, kBlockMagic, 4) != 0) return Corrupt(file, where + ": bad block marker (corrupt)");
    const uint16_t name_len = Get<uint16_t>(h + 6);
    if (name_len > kMaxBlockNameBytes || body_end - pos - kBlockHeaderBytes < name_len) {
      return Corrupt(file, where + ": name length " + std::to_string(name_len) + " is corrupt");
    }
    BlockInfo b;
    b.name.assign(h + kBlockHeaderBytes, name_len);
    std::string ctx = "column '" + b.name + "'";
    if (options.verify_checksums) {
      uint64_t hh = Hash64(h, 72, Hash64(b.name));
      if (hh != Get<uint64_t>(h + 72)) return Corrupt(file, where + " (" + ctx + "): header checksum mismatch (corrupt)");
    }
    const uint8_t type = Get<uint8_t>(h + 4);
    if (type >= kNumBlockTypes) return Corrupt(file, ctx + ": unknown block type " + std::to_string(type));
    b.type = static_cast<BlockType>(type);
    if (Get<uint8_t>(h + 5) != kCodecZstd) return Corrupt(file, ctx + ": unknown codec " + std::to_string(h[5]));
    if (Get<uint32_t>(h + 8) != PartCount(b.type) || Get<uint32_t>(h + 12) != 0) {
      return Corrupt(file, ctx + ": part count does not match its type (corrupt)");
    }
    b.rows = Get<uint64_t>(h + 16);
    const auto elem = PartElemBytes(b.type);
    uint64_t raw = 0;
    for (size_t k = 0; k < 4; ++k) {
      b.part_bytes[k] = Get<uint64_t>(h + 24 + 8 * k);
      if (b.part_bytes[k] > kMaxBlockBytes || (elem[k] == 0 ? b.part_bytes[k] != 0 : b.part_bytes[k] % elem[k] != 0)) {
        return Corrupt(file, ctx + ": part " + std::to_string(k) + " size " + std::to_string(b.part_bytes[k]) +
                                 " is corrupt");
      }
      raw += b.part_bytes[k];
    }
    if (raw > kMaxBlockBytes) return Corrupt(file, ctx + ": decompressed size is corrupt");
    // Rows must agree with the part that carries them; rows ≤ raw bytes bounds every later resize.
    const uint64_t lead = b.part_bytes[0] / elem[0];
    const bool offsets_first = b.type == BlockType::kStrings || b.type == BlockType::kCategoricalList ||
                               b.type == BlockType::kSparseVector;
    if (offsets_first ? lead != b.rows + 1 : lead != b.rows) {
      return Corrupt(file, ctx + ": " + std::to_string(b.rows) + " rows do not match its data size (corrupt)");
    }
    if (b.type == BlockType::kSparseVector && b.part_bytes[1] != b.part_bytes[2]) {
      return Corrupt(file, ctx + ": index and value lengths differ (corrupt)");
    }
    const uint64_t stored = Get<uint64_t>(h + 56);
    pos += kBlockHeaderBytes + name_len;
    if (stored > body_end - pos) {
      return Corrupt(file, ctx + ": data runs past the end of the file (" + std::to_string(stored) + " bytes claimed, " +
                               std::to_string(body_end - pos) + " left; truncated or corrupt)");
    }
    b.stored = bytes.substr(pos, stored);
    b.payload_hash = Get<uint64_t>(h + 64);
    // A zstd frame can only expand so far: a corrupt size field cannot make us allocate more.
    unsigned long long bound = ZSTD_decompressBound(b.stored.data(), b.stored.size());
    if (bound == ZSTD_CONTENTSIZE_ERROR || raw > bound || raw > kMaxZstdExpansion * stored + (128u << 10)) {
      if (options.verify_checksums && Hash64(b.stored.data(), b.stored.size()) != b.payload_hash) {
        return Corrupt(file, ctx + ": checksum mismatch (corrupt data)");
      }
      return Corrupt(file, ctx + ": compressed data is corrupt or shorter than its stated size");
    }
    pos += stored;
    chain.push_back(b.payload_hash);
    chain.push_back(Get<uint64_t>(h + 72));
    index.blocks.push_back(std::move(b));
  }
  if (pos != body_end) {
    return Corrupt(file, std::to_string(body_end - pos) + " unexpected bytes after the last block (corrupt)");
  }
  if (options.verify_checksums &&
      Hash64(chain.data(), chain.size() * 8, Hash64(t, 16)) != Get<uint64_t>(t + 16)) {
    return Corrupt(file, "trailer checksum mismatch (blocks reordered or corrupt)");
  }
  return index;
}

namespace {
Status CheckFrameExpands(const BlockInfo& b, const FrameRef& f, std::string_view file);
}  // namespace

StatusOr<std::vector<FrameRef>> VerifyBlockPayload(const BlockInfo& b, std::string_view file,
                                                   const ColumnFileReadOptions& o) {
  if (o.verify_checksums && Hash64(b.stored.data(), b.stored.size()) != b.payload_hash) {
    return Corrupt(BlockContext(file, b.name), "checksum mismatch (corrupt data)");
  }
  const uint64_t raw = b.raw_bytes();
  std::vector<FrameRef> frames;
  uint64_t src = 0, dst = 0;
  while (src < b.stored.size() || frames.empty()) {
    const char* p = b.stored.data() + src;
    const size_t left = b.stored.size() - src;
    size_t fsize = ZSTD_findFrameCompressedSize(p, left);
    if (ZSTD_isError(fsize) || fsize == 0 || fsize > left) {
      return Corrupt(BlockContext(file, b.name), "compressed data is not a sequence of complete zstd frames (corrupt)");
    }
    unsigned long long content = ZSTD_getFrameContentSize(p, fsize);
    if (content == ZSTD_CONTENTSIZE_UNKNOWN || content == ZSTD_CONTENTSIZE_ERROR || content > raw - dst) {
      return Corrupt(BlockContext(file, b.name), "decompressed size differs from the header (corrupt)");
    }
    FrameRef f{src, fsize, dst, content};
    // A verified header is trusted; without checksums a high claimed expansion must be proven.
    if (!o.verify_checksums && content > kTrustedExpansion * fsize + (uint64_t{1} << 20)) {
      ADREC_RETURN_IF_ERROR(CheckFrameExpands(b, f, file));
    }
    frames.push_back(f);
    src += fsize;
    dst += content;
  }
  if (dst != raw) return Corrupt(BlockContext(file, b.name), "decompressed size differs from the header (corrupt)");
  return frames;
}

Status DecompressFrame(const BlockInfo& b, const FrameRef& f, std::span<std::byte> dst, std::string_view file) {
  if (dst.size() != f.dst_bytes || f.src_offset + f.src_bytes > b.stored.size()) {
    return InternalError(BlockContext(file, b.name) + ": frame does not fit its buffers");
  }
  std::byte dummy{};
  size_t r = ZSTD_decompress(dst.empty() ? &dummy : dst.data(), dst.size(), b.stored.data() + f.src_offset, f.src_bytes);
  if (ZSTD_isError(r)) {
    return Corrupt(BlockContext(file, b.name), std::string("zstd: ") + ZSTD_getErrorName(r) + " (corrupt data)");
  }
  if (r != dst.size()) return Corrupt(BlockContext(file, b.name), "decompressed size differs from the header (corrupt)");
  return Status::Ok();
}

namespace {

// Decompresses a frame only to count its bytes (proves a claimed size without allocating it).
Status CheckFrameExpands(const BlockInfo& b, const FrameRef& f, std::string_view file) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!dctx) return ResourceExhaustedError("zstd: cannot create a decompression context");
  std::vector<char> scratch(ZSTD_DStreamOutSize());
  ZSTD_inBuffer in{b.stored.data() + f.src_offset, f.src_bytes, 0};
  uint64_t produced = 0;
  while (produced <= f.dst_bytes) {
    ZSTD_outBuffer out{scratch.data(), scratch.size(), 0};
    size_t r = ZSTD_decompressStream(dctx.get(), &out, &in);
    if (ZSTD_isError(r)) {
      return Corrupt(BlockContext(file, b.name), std::string("zstd: ") + ZSTD_getErrorName(r) + " (corrupt data)");
    }
    produced += out.pos;
    if (r == 0 || (out.pos == 0 && in.pos == in.size)) break;  // frame done, or no progress possible
  }
  if (produced != f.dst_bytes) return Corrupt(BlockContext(file, b.name), "decompressed size differs from the header (corrupt)");
  return Status::Ok();
}

// Decompresses a verified block into `dst` (one buffer per part, sized to part_bytes).
Status Decompress(const BlockInfo& b, const std::vector<FrameRef>& frames, std::string_view file,
                  std::span<const std::span<std::byte>> dst) {
  // One part decodes in place; several go through one buffer (frames may straddle parts).
  size_t nonempty = 0;
  for (auto d : dst) nonempty += d.empty() ? 0 : 1;
  std::unique_ptr<std::byte[]> tmp;
  std::span<std::byte> out;
  if (nonempty <= 1) {
    for (auto d : dst) if (!d.empty()) out = d;
  } else {
    tmp.reset(new std::byte[b.raw_bytes()]);
    out = {tmp.get(), b.raw_bytes()};
  }
  for (const FrameRef& f : frames) {
    ADREC_RETURN_IF_ERROR(DecompressFrame(b, f, out.subspan(f.dst_offset, f.dst_bytes), file));
  }
  if (tmp) {
    size_t off = 0;
    for (auto d : dst) {
      if (!d.empty()) std::memcpy(d.data(), tmp.get() + off, d.size());
      off += d.size();
    }
  }
  return Status::Ok();
}

template <typename T>
std::span<std::byte> Bytes(std::vector<T>& v) {
  return {reinterpret_cast<std::byte*>(v.data()), v.size() * sizeof(T)};
}
std::span<std::byte> Bytes(std::string& s) { return {reinterpret_cast<std::byte*>(s.data()), s.size()}; }

Status WantType(const BlockInfo& b, std::string_view file, BlockType want) {
  if (b.type == want) return Status::Ok();
  return Corrupt(BlockContext(file, b.name), "has type " + std::string(BlockTypeName(b.type)) + ", expected " +
                                                 std::string(BlockTypeName(want)));
}

template <typename T>
Status DecodeArray(const BlockInfo& b, std::string_view file, BlockType want, std::vector<T>* out,
                   const ColumnFileReadOptions& o) {
  ADREC_RETURN_IF_ERROR(WantType(b, file, want));
  ADREC_ASSIGN_OR_RETURN(std::vector<FrameRef> frames, VerifyBlockPayload(b, file, o));
  out->resize(b.part_bytes[0] / sizeof(T));
  std::span<std::byte> d[1] = {Bytes(*out)};
  return Decompress(b, frames, file, d);
}

// Offsets must start at 0, never decrease and end at `end`: then every slice is in bounds.
Status CheckOffsets(const std::vector<uint64_t>& off, uint64_t end, std::string_view file, std::string_view block,
                    std::string_view what) {
  if (off.empty() || off.front() != 0 || off.back() != end) {
    return Corrupt(BlockContext(file, block), std::string(what) + " offsets do not span the data (corrupt)");
  }
  for (size_t i = 1; i < off.size(); ++i) {
    if (off[i] < off[i - 1]) {
      return Corrupt(BlockContext(file, block), std::string(what) + " offsets decrease at row " + std::to_string(i) +
                                                    " (corrupt)");
    }
  }
  return Status::Ok();
}

Status StringsFromParts(const std::vector<uint64_t>& off, const std::string& bytes, std::string_view file,
                        std::string_view block, std::string_view what, std::vector<std::string>* out) {
  ADREC_RETURN_IF_ERROR(CheckOffsets(off, bytes.size(), file, block, what));
  out->clear();
  out->reserve(off.size() - 1);
  for (size_t i = 0; i + 1 < off.size(); ++i) out->emplace_back(bytes.data() + off[i], off[i + 1] - off[i]);
  return Status::Ok();
}

StatusOr<std::shared_ptr<Vocabulary>> VocabFromParts(const std::vector<uint64_t>& off, const std::string& bytes,
                                                     std::string_view file, std::string_view block) {
  std::vector<std::string> names;
  ADREC_RETURN_IF_ERROR(StringsFromParts(off, bytes, file, block, "vocabulary", &names));
  auto v = Vocabulary::FromNames(std::move(names));
  if (!v.ok()) return v.status().WithContext(BlockContext(file, block));
  return std::make_shared<Vocabulary>(std::move(v).value());
}

}  // namespace

Status DecodeU8(const BlockInfo& b, std::string_view file, std::vector<uint8_t>* out, const ColumnFileReadOptions& o) {
  return DecodeArray(b, file, BlockType::kU8, out, o);
}
Status DecodeU32(const BlockInfo& b, std::string_view file, std::vector<uint32_t>* out, const ColumnFileReadOptions& o) {
  return DecodeArray(b, file, BlockType::kU32, out, o);
}
Status DecodeU64(const BlockInfo& b, std::string_view file, std::vector<uint64_t>* out, const ColumnFileReadOptions& o) {
  return DecodeArray(b, file, BlockType::kU64, out, o);
}
Status DecodeF32(const BlockInfo& b, std::string_view file, std::vector<float>* out, const ColumnFileReadOptions& o) {
  return DecodeArray(b, file, BlockType::kF32, out, o);
}

Status DecodeStrings(const BlockInfo& b, std::string_view file, std::vector<std::string>* out,
                     const ColumnFileReadOptions& o) {
  ADREC_RETURN_IF_ERROR(WantType(b, file, BlockType::kStrings));
  ADREC_ASSIGN_OR_RETURN(std::vector<FrameRef> frames, VerifyBlockPayload(b, file, o));
  std::vector<uint64_t> off(b.part_bytes[0] / 8);
  std::string bytes(b.part_bytes[1], '\0');
  std::span<std::byte> d[2] = {Bytes(off), Bytes(bytes)};
  ADREC_RETURN_IF_ERROR(Decompress(b, frames, file, d));
  return StringsFromParts(off, bytes, file, b.name, "string", out);
}

Status DecodeColumn(const BlockInfo& b, std::string_view file, Column* out, const ColumnFileReadOptions& o) {
  ADREC_ASSIGN_OR_RETURN(ColumnType type, ColumnTypeOfBlock(b.type));
  Column c;
  c.name = b.name;
  c.type = type;
  std::vector<uint64_t> voff;
  std::string vbytes;
  switch (b.type) {
    case BlockType::kU32: ADREC_RETURN_IF_ERROR(DecodeArray(b, file, b.type, &c.u32, o)); break;
    case BlockType::kF32: ADREC_RETURN_IF_ERROR(DecodeArray(b, file, b.type, &c.f32, o)); break;
    case BlockType::kStrings: ADREC_RETURN_IF_ERROR(DecodeStrings(b, file, &c.str, o)); break;
    case BlockType::kCategorical: {
      ADREC_ASSIGN_OR_RETURN(std::vector<FrameRef> frames, VerifyBlockPayload(b, file, o));
      c.u32.resize(b.part_bytes[0] / 4);
      voff.resize(b.part_bytes[1] / 8);
      vbytes.resize(b.part_bytes[2]);
      std::span<std::byte> d[3] = {Bytes(c.u32), Bytes(voff), Bytes(vbytes)};
      ADREC_RETURN_IF_ERROR(Decompress(b, frames, file, d));
      break;
    }
    case BlockType::kCategoricalList: {
      ADREC_ASSIGN_OR_RETURN(std::vector<FrameRef> frames, VerifyBlockPayload(b, file, o));
      c.offsets.resize(b.part_bytes[0] / 8);
      c.u32.resize(b.part_bytes[1] / 4);
      voff.resize(b.part_bytes[2] / 8);
      vbytes.resize(b.part_bytes[3]);
      std::span<std::byte> d[4] = {Bytes(c.offsets), Bytes(c.u32), Bytes(voff), Bytes(vbytes)};
      ADREC_RETURN_IF_ERROR(Decompress(b, frames, file, d));
      ADREC_RETURN_IF_ERROR(CheckOffsets(c.offsets, c.u32.size(), file, b.name, "row"));
      break;
    }
    case BlockType::kSparseVector: {
      ADREC_ASSIGN_OR_RETURN(std::vector<FrameRef> frames, VerifyBlockPayload(b, file, o));
      c.offsets.resize(b.part_bytes[0] / 8);
      c.u32.resize(b.part_bytes[1] / 4);
      c.f32.resize(b.part_bytes[2] / 4);
      std::span<std::byte> d[3] = {Bytes(c.offsets), Bytes(c.u32), Bytes(c.f32)};
      ADREC_RETURN_IF_ERROR(Decompress(b, frames, file, d));
      ADREC_RETURN_IF_ERROR(CheckOffsets(c.offsets, c.u32.size(), file, b.name, "row"));
      break;
    }
    default: break;
  }
  if (type == ColumnType::kCategorical || type == ColumnType::kCategoricalList) {
    ADREC_ASSIGN_OR_RETURN(c.vocab, VocabFromParts(voff, vbytes, file, b.name));
    const uint32_t vsize = c.vocab->size();
    for (uint32_t code : c.u32) {
      if (code >= vsize) return Corrupt(BlockContext(file, b.name), "code " + std::to_string(code) + " is outside its vocabulary of " + std::to_string(vsize) + " (corrupt)");
    }
  }
  *out = std::move(c);
  return Status::Ok();
}

Status DecodeColumnFileForTest(std::string_view bytes, std::string_view file, const ColumnFileReadOptions& o) {
  if (bytes.size() < 16) return Corrupt(file, "truncated");
  uint32_t kind = Get<uint32_t>(bytes.data() + 12);
  ADREC_ASSIGN_OR_RETURN(ColumnFileIndex index, ParseColumnFile(bytes, static_cast<FileKind>(kind), file, o));
  for (const auto& b : index.blocks) {
    if (ColumnTypeOfBlock(b.type).ok()) {
      Column c;
      ADREC_RETURN_IF_ERROR(DecodeColumn(b, file, &c, o));
    } else if (b.type == BlockType::kU8) {
      std::vector<uint8_t> v;
      ADREC_RETURN_IF_ERROR(DecodeU8(b, file, &v, o));
    } else {
      std::vector<uint64_t> v;
      ADREC_RETURN_IF_ERROR(DecodeU64(b, file, &v, o));
    }
  }
  return Status::Ok();
}

}  // namespace adrec::data
