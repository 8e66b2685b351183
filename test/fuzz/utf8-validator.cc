// libFuzzer target for the UTF-8 validator: the one-shot check, the incremental validator
// fed in pieces (split points from the input) and a plain reference decoder must agree.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "protocol/utf8-validator.h"

namespace {

// RFC 3629 by the book: shortest form, no surrogates, at most U+10FFFF.
bool reference(const uint8_t* s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t step = data[0];
  data += 1;
  size -= 1;
  const bool want = reference(data, size);
  if (lapps::isValidUtf8(data, size) != want) std::abort();
  lapps::Utf8Validator v;
  bool ok = true;
  for (size_t pos = 0; pos < size && ok;) {
    size_t n = std::min<size_t>(size - pos, 1 + (step + pos) % 13);
    ok = v.feed(data + pos, n);
    pos += n;
  }
  ok = ok && v.complete();
  if (ok != want) std::abort();
  return 0;
}
