// Incremental UTF-8 validation (RFC 3629 / Unicode Table 3-7): rejects overlong forms,
// surrogates (U+D800-U+DFFF) and code points above U+10FFFF at the first byte that makes
// the input impossible to complete, so a bad text message fails fast even mid-fragment.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace lapps {

namespace utf8 {

// DFA states. Each value is a bit offset into a 64-bit row: row[byte] holds, at offset `s`,
// the 6-bit next state for state `s`. A step is then one load and one shift, which keeps
// the loop-carried dependency to a single shift per byte.
inline constexpr uint8_t kAccept = 0;    // between code points
inline constexpr uint8_t kReject = 6;    // absorbing
inline constexpr uint8_t kTail1 = 12;    // one more 80..BF
inline constexpr uint8_t kTail2 = 18;    // two more 80..BF
inline constexpr uint8_t kTail3 = 24;    // three more 80..BF
inline constexpr uint8_t kAfterE0 = 30;  // A0..BF, then 1 (no overlong 3-byte form)
inline constexpr uint8_t kAfterED = 36;  // 80..9F, then 1 (no surrogates)
inline constexpr uint8_t kAfterF0 = 42;  // 90..BF, then 2 (no overlong 4-byte form)
inline constexpr uint8_t kAfterF4 = 48;  // 80..8F, then 2 (nothing above U+10FFFF)
inline constexpr uint8_t kStates[] = {kAccept,  kReject,  kTail1,   kTail2,  kTail3,
                                      kAfterE0, kAfterED, kAfterF0, kAfterF4};

constexpr bool in(uint8_t b, uint8_t lo, uint8_t hi) {
  return b >= lo && b <= hi;
}

constexpr uint8_t next(uint8_t s, uint8_t b) {
  switch (s) {
    case kAccept:
      if (b < 0x80) return kAccept;
      if (in(b, 0xC2, 0xDF)) return kTail1;  // C0, C1 would only start overlongs
      if (b == 0xE0) return kAfterE0;
      if (b == 0xED) return kAfterED;
      if (in(b, 0xE1, 0xEF)) return kTail2;
      if (b == 0xF0) return kAfterF0;
      if (in(b, 0xF1, 0xF3)) return kTail3;
      if (b == 0xF4) return kAfterF4;
      return kReject;  // stray continuation, C0, C1, F5..FF
    case kTail1:
      return in(b, 0x80, 0xBF) ? kAccept : kReject;
    case kTail2:
      return in(b, 0x80, 0xBF) ? kTail1 : kReject;
    case kTail3:
      return in(b, 0x80, 0xBF) ? kTail2 : kReject;
    case kAfterE0:
      return in(b, 0xA0, 0xBF) ? kTail1 : kReject;
    case kAfterED:
      return in(b, 0x80, 0x9F) ? kTail1 : kReject;
    case kAfterF0:
      return in(b, 0x90, 0xBF) ? kTail2 : kReject;
    case kAfterF4:
      return in(b, 0x80, 0x8F) ? kTail2 : kReject;
    default:
      return kReject;
  }
}

constexpr std::array<uint64_t, 256> makeRows() {
  std::array<uint64_t, 256> rows{};
  for (unsigned b = 0; b < 256; ++b)
    for (uint8_t s : kStates) rows[b] |= uint64_t{next(s, static_cast<uint8_t>(b))} << s;
  return rows;
}

inline constexpr std::array<uint64_t, 256> kRows = makeRows();

// Index of the first byte >= 0x80 in p[i, n), or n.
inline size_t skipAscii(const uint8_t* p, size_t i, size_t n) {
#if defined(__SSE2__)
  for (; i + 64 <= n; i += 64) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 16));
    __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 32));
    __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 48));
    if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d))) != 0) break;
  }
  for (; i + 16 <= n; i += 16) {
    int m = _mm_movemask_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)));
    if (m != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(m)));
  }
#endif
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if ((w & 0x8080808080808080ull) != 0) break;  // locate it bytewise below
  }
  while (i < n && p[i] < 0x80) ++i;
  return i;
}

}  // namespace utf8

class Utf8Validator {
 public:
  // Validates the next n bytes. Returns false once the input so far cannot be (a prefix of)
  // valid UTF-8; the validator then stays failed until reset(). A code point may be split
  // between calls.
  bool feed(const uint8_t* p, size_t n) {
    uint64_t s = state_;
    if (s == utf8::kReject) return false;
    size_t i = 0;
    while (i < n) {
      if (s == utf8::kAccept) {
        i = utf8::skipAscii(p, i, n);
        if (i == n) break;
      }
      // Run the DFA over a short stretch before trying the ASCII path again, so text
      // that is mostly multi-byte does not pay for a failed vector probe at every char.
      size_t end = n - i > 16 ? i + 16 : n;
      for (; i < end; ++i) s = utf8::kRows[p[i]] >> (s & 63);
      s &= 63;
      if (s == utf8::kReject) break;
    }
    state_ = static_cast<uint8_t>(s);
    return s != utf8::kReject;
  }

  // True between code points (and not failed): the text so far is complete UTF-8.
  bool complete() const { return state_ == utf8::kAccept; }
  bool failed() const { return state_ == utf8::kReject; }
  void reset() { state_ = utf8::kAccept; }

 private:
  uint8_t state_ = utf8::kAccept;
};

inline bool isValidUtf8(const uint8_t* p, size_t n) {
  Utf8Validator v;
  return v.feed(p, n) && v.complete();
}

}  // namespace lapps
