// Fuzzes the reader of encrypted files (adrec/core/crypto.h): any bytes either decrypt (only
// what the key sealed) or give an error; never a crash, never an unauthenticated plaintext.
// The first input byte picks a mutation of a sealed file, so the fuzzer reaches past the header.
#include <cstdlib>
#include <string>
#include <string_view>

#include "adrec/core/crypto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  adrec::SecretKey key;
  key.bytes.fill(3);
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  // As is: bytes this key never sealed must never decrypt (that would be a forgery).
  if (adrec::DecryptBytes(key, in, "fuzz").ok()) std::abort();
  if (size < 2) return 0;
  // A sealed file of the rest, with one byte changed where the first two bytes say: an error.
  const std::string plain(in.substr(2));
  const std::string sealed = adrec::EncryptBytes(key, plain);
  auto back = adrec::DecryptBytes(key, sealed, "fuzz");
  if (!back.ok() || *back != plain) std::abort();
  std::string changed = sealed;
  const size_t at = (static_cast<size_t>(data[0]) << 8 | data[1]) % changed.size();
  changed[at] = static_cast<char>(changed[at] ^ 0x5a);
  if (adrec::DecryptBytes(key, changed, "fuzz").ok()) std::abort();
  if (adrec::DecryptBytes(key, sealed.substr(0, sealed.size() - 1 - at % 8), "fuzz").ok()) std::abort();
  return 0;
}
