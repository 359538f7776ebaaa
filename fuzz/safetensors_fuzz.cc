// Fuzzes the safetensors reader (bundle weights, checkpoints, Hugging Face weights): a header
// that validates must describe tensors that lie inside the buffer, and serialising them again
// must validate too.
#include <cstdlib>
#include <string_view>

#include "adrec/core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = adrec::SafetensorsFile::FromBytes(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!file.ok()) return 0;
  for (const adrec::TensorView& t : file->tensors()) {
    if (t.numel() < 0 || t.data.size() != static_cast<size_t>(t.numel()) * adrec::DtypeSize(t.dtype)) std::abort();
    if (file->Find(t.name) != &t) std::abort();
  }
  auto again = adrec::SerializeSafetensors(file->tensors(), file->metadata());
  if (!again.ok()) return 0;  // names Python's writer would refuse (the reader is more lenient)
  if (!adrec::SafetensorsFile::FromBytes(*again, "fuzz-again").ok()) std::abort();
  return 0;
}
