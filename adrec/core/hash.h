// XXH3 hashing helpers: feature hashing, checksums and content keys all use these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace adrec {

uint64_t Hash64(const void* data, size_t size, uint64_t seed = 0);
inline uint64_t Hash64(std::string_view s, uint64_t seed = 0) { return Hash64(s.data(), s.size(), seed); }
// Hash of an integer ID (feature hashing of dense IDs into buckets).
uint64_t HashId(uint64_t id, uint64_t seed = 0);
// Order-dependent combination, for hashing tuples of fields.
inline uint64_t HashCombine(uint64_t a, uint64_t b) {
  return a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
}

// Streaming XXH3-64 over many updates (file checksums).
class StreamingHash64 {
 public:
  explicit StreamingHash64(uint64_t seed = 0);
  ~StreamingHash64();
  StreamingHash64(const StreamingHash64&) = delete;
  StreamingHash64& operator=(const StreamingHash64&) = delete;
  void Update(const void* data, size_t size);
  uint64_t Digest() const;

 private:
  void* state_;  // XXH3_state_t, kept out of this header
};

}  // namespace adrec
