#include "adrec/data/split.h"

#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "adrec/core/file.h"
#include "adrec/core/hash.h"

namespace adrec::data {

std::string_view SplitPartName(SplitPart p) {
  switch (p) {
    case SplitPart::kTrain: return "train";
    case SplitPart::kValid: return "valid";
    case SplitPart::kTest: return "test";
  }
  return "unknown";
}

ActionMask DefaultPositiveMask(const Dataset& ds) {
  ActionMask present = 0;
  for (uint8_t a : ds.events.action) present |= ActionMask{1} << a;
  // One action type only: every event is an interaction (ratings, sequences, view logs).
  if (present != 0 && (present & (present - 1)) == 0) return present;
  return present & ~ActionBit(Action::kImpression);
}

std::string ActionMaskNames(ActionMask mask) {
  std::string out;
  for (int a = 0; a < kNumActions; ++a) {
    if (!((mask >> a) & 1u)) continue;
    if (!out.empty()) out += ",";
    out += ActionName(static_cast<Action>(a));
  }
  return out;
}

std::array<uint64_t, kNumSplitParts> Split::Counts() const {
  std::array<uint64_t, kNumSplitParts> c{};
  for (uint8_t p : part) if (p < kNumSplitParts) c[p]++;
  return c;
}

namespace {

// Uniform double in [0, 1) from a seeded hash: a split must not depend on the standard
// library's distributions (which differ between implementations).
double HashUnit(uint64_t id, uint64_t seed) { return static_cast<double>(HashId(id, seed) >> 11) * 0x1.0p-53; }

uint8_t PartByFraction(double u, double train, double valid) {
  if (u < train) return static_cast<uint8_t>(SplitPart::kTrain);
  if (u < train + valid) return static_cast<uint8_t>(SplitPart::kValid);
  return static_cast<uint8_t>(SplitPart::kTest);
}

Status CheckFractions(const SplitOptions& o) {
  auto bad = [](double f) { return !(f >= 0.0 && f <= 1.0); };
  if (bad(o.train_fraction) || bad(o.valid_fraction) || o.train_fraction + o.valid_fraction > 1.0 + 1e-12) {
    return InvalidArgumentError("split fractions must be in [0, 1] with train + valid <= 1, got train=" +
                                std::to_string(o.train_fraction) + " valid=" + std::to_string(o.valid_fraction));
  }
  return Status::Ok();
}

void LeaveOneOut(const Dataset& ds, const SplitOptions& o, Split& s) {
  for (uint32_t u = 0; u < ds.num_users(); ++u) {
    auto [b, e] = ds.UserRange(u);
    uint64_t last = e, second = e;  // newest positive, second newest
    uint32_t positives = 0;
    for (uint64_t i = e; i-- > b;) {
      if (!s.IsPositive(ds.events.action[i])) continue;
      if (++positives == 1) last = i;
      else if (positives == 2) second = i;
    }
    if (positives < o.min_positives) continue;
    s.part[last] = static_cast<uint8_t>(SplitPart::kTest);
    s.part[second] = static_cast<uint8_t>(SplitPart::kValid);
  }
}

void Temporal(const Dataset& ds, const SplitOptions& o, Split& s) {
  const size_t n = ds.num_events();
  std::vector<uint32_t> times(ds.events.time);
  std::sort(times.begin(), times.end());
  auto cut = [&](double f) -> uint64_t {
    size_t k = static_cast<size_t>(std::floor(f * static_cast<double>(n)));
    return k >= n ? uint64_t{UINT32_MAX} + 1 : times[k];  // fraction 1: nothing above the cut
  };
  const uint64_t t_valid = cut(o.train_fraction);
  const uint64_t t_test = cut(o.train_fraction + o.valid_fraction);
  for (size_t i = 0; i < n; ++i) {
    uint64_t t = ds.events.time[i];
    s.part[i] = static_cast<uint8_t>(t < t_valid ? SplitPart::kTrain : t < t_test ? SplitPart::kValid : SplitPart::kTest);
  }
}

}  // namespace

StatusOr<Split> MakeSplit(const Dataset& ds, const SplitOptions& options) {
  Split s;
  s.method = options.method;
  s.part.assign(ds.num_events(), static_cast<uint8_t>(SplitPart::kTrain));
  if (options.positive_actions.empty()) {
    s.positive_mask = DefaultPositiveMask(ds);
  } else {
    for (Action a : options.positive_actions) s.positive_mask |= ActionBit(a);
  }
  if (options.method == "loo") {
    if (options.min_positives < 2) {
      return InvalidArgumentError("loo split: min_positives must be >= 2 (one valid and one test event), got " +
                                  std::to_string(options.min_positives));
    }
    LeaveOneOut(ds, options, s);
  } else if (options.method == "temporal") {
    ADREC_RETURN_IF_ERROR(CheckFractions(options));
    Temporal(ds, options, s);
  } else if (options.method == "random") {
    ADREC_RETURN_IF_ERROR(CheckFractions(options));
    s.seed = options.seed;
    for (uint32_t u = 0; u < ds.num_users(); ++u) {
      uint8_t p = PartByFraction(HashUnit(u, options.seed), options.train_fraction, options.valid_fraction);
      auto [b, e] = ds.UserRange(u);
      std::fill(s.part.begin() + static_cast<ptrdiff_t>(b), s.part.begin() + static_cast<ptrdiff_t>(e), p);
    }
  } else if (options.method == "random_event") {
    ADREC_RETURN_IF_ERROR(CheckFractions(options));
    s.seed = options.seed;
    for (size_t i = 0; i < ds.num_events(); ++i) {
      s.part[i] = PartByFraction(HashUnit(i, options.seed), options.train_fraction, options.valid_fraction);
    }
  } else {
    return InvalidArgumentError("unknown split method '" + options.method +
                                "' (known: loo, temporal, random, random_event)");
  }
  return s;
}

Status CheckSplitMatches(const Split& split, const Dataset& ds) {
  if (split.size() != ds.num_events()) {
    return FailedPreconditionError("split '" + split.method + "' covers " + std::to_string(split.size()) +
                                   " events but the dataset has " + std::to_string(ds.num_events()) +
                                   ": it was made for another dataset");
  }
  return Status::Ok();
}

// split.bin layout (little-endian):
//   magic "ADRSPLIT" | u32 version | u32 flags (bit 0: zstd) | u64 events | u32 positive_mask |
//   u32 method_len | u64 seed | u64 payload_bytes | method | payload | u64 XXH3 of all before it
namespace {
constexpr char kMagic[8] = {'A', 'D', 'R', 'S', 'P', 'L', 'I', 'T'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kFlagZstd = 1;
constexpr size_t kHeaderBytes = 8 + 4 + 4 + 8 + 4 + 4 + 8 + 8;

template <typename T>
void Put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
template <typename T>
T Get(const std::string& in, size_t& pos) {
  T v;
  std::memcpy(&v, in.data() + pos, sizeof(T));
  pos += sizeof(T);
  return v;
}
}  // namespace

Status WriteSplit(const Split& split, const std::filesystem::path& dir, const WriteSplitOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("creating split directory " + dir.string() + ": " + ec.message());
  const auto bin = dir / "split.bin";
  if (!options.overwrite && std::filesystem::exists(bin)) {
    return AlreadyExistsError(bin.string() + " exists (pass overwrite to replace it)");
  }
  std::string payload;
  uint32_t flags = 0;
  if (options.compress && !split.part.empty()) {
    payload.resize(ZSTD_compressBound(split.part.size()));
    size_t r = ZSTD_compress(payload.data(), payload.size(), split.part.data(), split.part.size(), options.zstd_level);
    if (ZSTD_isError(r)) return InternalError(std::string("zstd compression of split failed: ") + ZSTD_getErrorName(r));
    payload.resize(r);
    flags |= kFlagZstd;
  } else {
    payload.assign(reinterpret_cast<const char*>(split.part.data()), split.part.size());
  }
  std::string out;
  out.reserve(kHeaderBytes + split.method.size() + payload.size() + 8);
  out.append(kMagic, 8);
  Put<uint32_t>(out, kVersion);
  Put<uint32_t>(out, flags);
  Put<uint64_t>(out, split.part.size());
  Put<uint32_t>(out, split.positive_mask);
  Put<uint32_t>(out, static_cast<uint32_t>(split.method.size()));
  Put<uint64_t>(out, split.seed);
  Put<uint64_t>(out, payload.size());
  out += split.method;
  out += payload;
  Put<uint64_t>(out, Hash64(out.data(), out.size()));
  ADREC_RETURN_IF_ERROR(AtomicWriteFile(bin, out));

  auto counts = split.Counts();
  std::ostringstream toml;
  toml << "# Written by adrec; split.bin holds one byte per event (0 train, 1 valid, 2 test).\n"
       << "format_version = " << kVersion << "\n"
       << "method = \"" << split.method << "\"\n"
       << "seed = " << split.seed << "\n"
       << "positive_actions = \"" << ActionMaskNames(split.positive_mask) << "\"\n"
       << "events = " << split.size() << "\n"
       << "compressed = " << ((flags & kFlagZstd) ? "true" : "false") << "\n\n"
       << "[counts]\n"
       << "train = " << counts[0] << "\nvalid = " << counts[1] << "\ntest = " << counts[2] << "\n";
  return AtomicWriteFile(dir / "split.toml", toml.str());
}

StatusOr<Split> ReadSplit(const std::filesystem::path& dir) {
  const auto bin = dir / "split.bin";
  const std::string name = bin.string();
  ADREC_ASSIGN_OR_RETURN(std::string data, ReadFile(bin));
  auto loss = [&](const std::string& why) { return DataLossError(name + ": " + why); };
  if (data.size() < kHeaderBytes + 8) return loss("truncated (" + std::to_string(data.size()) + " bytes)");
  if (std::memcmp(data.data(), kMagic, 8) != 0) return loss("not a split file (bad magic)");
  size_t pos = 8;
  const auto version = Get<uint32_t>(data, pos);
  if (version != kVersion) return loss("unsupported version " + std::to_string(version));
  const auto flags = Get<uint32_t>(data, pos);
  const auto events = Get<uint64_t>(data, pos);
  Split s;
  s.positive_mask = Get<uint32_t>(data, pos);
  const auto method_len = Get<uint32_t>(data, pos);
  s.seed = Get<uint64_t>(data, pos);
  const auto payload_bytes = Get<uint64_t>(data, pos);
  const uint64_t want = kHeaderBytes + uint64_t{method_len} + payload_bytes + 8;
  if (method_len > 256 || payload_bytes > data.size() || want != data.size()) {
    return loss("truncated or corrupt: header says " + std::to_string(want) + " bytes, file has " +
                std::to_string(data.size()));
  }
  uint64_t stored_sum;
  std::memcpy(&stored_sum, data.data() + data.size() - 8, 8);
  if (Hash64(data.data(), data.size() - 8) != stored_sum) return loss("checksum mismatch (corrupt file)");
  s.method.assign(data, pos, method_len);
  pos += method_len;
  if (flags & kFlagZstd) {
    s.part.resize(events);
    size_t r = ZSTD_decompress(s.part.data(), s.part.size(), data.data() + pos, payload_bytes);
    if (ZSTD_isError(r) || r != events) return loss("zstd payload does not decode to " + std::to_string(events) + " bytes");
  } else {
    if (payload_bytes != events) return loss("payload size differs from the event count");
    s.part.assign(data.begin() + static_cast<ptrdiff_t>(pos), data.begin() + static_cast<ptrdiff_t>(pos + events));
  }
  for (size_t i = 0; i < s.part.size(); ++i) {
    if (s.part[i] >= kNumSplitParts) return loss("event " + std::to_string(i) + " has invalid part " + std::to_string(s.part[i]));
  }
  return s;
}

StatusOr<Split> ReadSplit(const std::filesystem::path& dir, const Dataset& ds) {
  ADREC_ASSIGN_OR_RETURN(Split s, ReadSplit(dir));
  ADREC_RETURN_IF_ERROR(CheckSplitMatches(s, ds).WithContext((dir / "split.bin").string()));
  return s;
}

}  // namespace adrec::data
