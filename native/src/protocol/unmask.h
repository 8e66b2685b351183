// In-place XOR unmasking of client payloads (RFC 6455 §5.3). Masking is its own inverse, so
// tests also use this to mask.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace lapps {

// XORs data[0, len) with the 4-byte mask. `offset` is the position of data[0] within the
// frame payload, so a payload that arrives in pieces is unmasked piece by piece.
inline void unmask(uint8_t* data, size_t len, const uint8_t mask[4], size_t offset) {
  // Rotate the mask so that byte 0 of the word lines up with data[0].
  uint32_t m;
  std::memcpy(&m, mask, 4);
  const int shift = static_cast<int>(offset & 3) * 8;
  if constexpr (std::endian::native == std::endian::little) {
    m = std::rotr(m, shift);
  } else {
    m = std::rotl(m, shift);
  }
  size_t i = 0;
#if defined(__SSE2__)
  if (len >= 16) {
    const __m128i mv = _mm_set1_epi32(static_cast<int>(m));
    for (; i + 64 <= len; i += 64) {
      __m128i* p = reinterpret_cast<__m128i*>(data + i);
      __m128i a = _mm_xor_si128(_mm_loadu_si128(p), mv);
      __m128i b = _mm_xor_si128(_mm_loadu_si128(p + 1), mv);
      __m128i c = _mm_xor_si128(_mm_loadu_si128(p + 2), mv);
      __m128i d = _mm_xor_si128(_mm_loadu_si128(p + 3), mv);
      _mm_storeu_si128(p, a);
      _mm_storeu_si128(p + 1, b);
      _mm_storeu_si128(p + 2, c);
      _mm_storeu_si128(p + 3, d);
    }
    for (; i + 16 <= len; i += 16) {
      __m128i* p = reinterpret_cast<__m128i*>(data + i);
      _mm_storeu_si128(p, _mm_xor_si128(_mm_loadu_si128(p), mv));
    }
  }
#endif
  const uint64_t m64 = (uint64_t{m} << 32) | m;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    std::memcpy(&w, data + i, 8);
    w ^= m64;
    std::memcpy(data + i, &w, 8);
  }
  // i is a multiple of 8 here, so the rotated mask is still in phase.
  uint8_t mb[4];
  std::memcpy(mb, &m, 4);
  for (; i < len; ++i) data[i] ^= mb[i & 3];
}

}  // namespace lapps
