// Fuzzes the tokenizer.json reader (a model directory a user brings) and, when the file loads,
// encoding and decoding a text taken from the input's tail: every path returns a Status.
#include <cstdlib>
#include <string_view>

#include "adrec/text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  // tokenizer.json, then a NUL byte, then a text to encode (JSON holds no raw NUL).
  const size_t nul = in.find('\0');
  const size_t split = nul == std::string_view::npos ? size : nul;
  auto tok = adrec::text::Tokenizer::FromJson(in.substr(0, split), "fuzz/tokenizer.json");
  if (!tok.ok()) return 0;
  adrec::text::EncodeOptions o;
  o.max_length = 1 + size % 16;
  auto enc = tok->Encode(split < size ? in.substr(split + 1) : std::string_view("a test text"), o);
  if (!enc.ok()) return 0;
  if (enc->ids.size() > o.max_length || enc->ids.size() != enc->type_ids.size()) std::abort();
  for (int32_t id : enc->ids) {
    if (id < 0 || static_cast<size_t>(id) >= tok->vocab_size()) std::abort();
  }
  (void)tok->Decode(enc->ids);
  return 0;
}
