// Appends RFC 8949 items to a std::string. Heads always use the shortest form (the
// "preferred serialization" of RFC 8949 section 4.1). Floating-point numbers are written in
// the shortest of half / single / double precision that holds the value exactly, so
// 1.5 is f9 3e00 and 0.1 is fb 3fb999999999999a; NaN is always f9 7e00.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

namespace lapps {

class CborWriter {
 public:
  explicit CborWriter(std::string& out) : out_(out) {}

  void writeUnsigned(uint64_t v) { head(0, v); }
  // Writes -1 - n.
  void writeNegative(uint64_t n) { head(1, n); }
  void writeInt(int64_t v) {
    if (v >= 0) {
      head(0, static_cast<uint64_t>(v));
    } else {
      head(1, ~static_cast<uint64_t>(v));  // -1 - v without overflow
    }
  }
  void writeBytes(const void* p, size_t n) { string(2, p, n); }
  void writeText(const void* p, size_t n) { string(3, p, n); }
  void writeArrayHeader(uint64_t count) { head(4, count); }
  void writeMapHeader(uint64_t count) { head(5, count); }
  void writeTag(uint64_t tag) { head(6, tag); }
  void writeBool(bool b) { out_.push_back(static_cast<char>(b ? 0xF5 : 0xF4)); }
  void writeNull() { out_.push_back(static_cast<char>(0xF6)); }

  void writeDouble(double d) {
    if (std::isnan(d)) {
      bytes(0xF9, 0x7E00, 2);
      return;
    }
    float f = static_cast<float>(d);
    if (static_cast<double>(f) != d) {
      uint64_t bits;
      std::memcpy(&bits, &d, 8);
      bytes(0xFB, bits, 8);
      return;
    }
    uint32_t fb;
    std::memcpy(&fb, &f, 4);
    uint16_t hb;
    if (toHalf(fb, hb)) {
      bytes(0xF9, hb, 2);
    } else {
      bytes(0xFA, fb, 4);
    }
  }

 private:
  // Exact float32 -> float16 conversion; false when the value does not fit exactly.
  static bool toHalf(uint32_t f, uint16_t& h) {
    uint16_t sign = static_cast<uint16_t>((f >> 16) & 0x8000);
    int exp = static_cast<int>((f >> 23) & 0xFF);
    uint32_t mant = f & 0x7FFFFF;
    if (exp == 0xFF) {  // infinities (NaN handled by the caller)
      h = sign | 0x7C00;
      return mant == 0;
    }
    if (exp == 0 && mant == 0) {
      h = sign;
      return true;
    }
    if (exp == 0) return false;  // float32 subnormals are far below half's range
    int e = exp - 127;           // unbiased
    if (e > 15) return false;
    if (e >= -14) {  // normal half: 10 mantissa bits
      if (mant & 0x1FFF) return false;
      h = static_cast<uint16_t>(sign | ((e + 15) << 10) | (mant >> 13));
      return true;
    }
    if (e < -24) return false;
    // Subnormal half: value = m * 2^-24 with m < 1024, m = (1.mant) * 2^(e + 24).
    uint32_t full = mant | 0x800000;  // 24 significant bits, value = full * 2^(e - 23)
    int shift = -1 - e;               // (23 - 24 - e): full * 2^(e-23) = m * 2^-24
    if (full & ((1u << shift) - 1)) return false;
    h = static_cast<uint16_t>(sign | (full >> shift));
    return true;
  }

  void bytes(uint8_t ib, uint64_t v, int n) {
    out_.push_back(static_cast<char>(ib));
    for (int i = n - 1; i >= 0; --i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
  void head(uint8_t major, uint64_t v) {
    uint8_t m = static_cast<uint8_t>(major << 5);
    if (v < 24) {
      out_.push_back(static_cast<char>(m | v));
    } else if (v <= 0xFF) {
      bytes(m | 24, v, 1);
    } else if (v <= 0xFFFF) {
      bytes(m | 25, v, 2);
    } else if (v <= 0xFFFFFFFF) {
      bytes(m | 26, v, 4);
    } else {
      bytes(m | 27, v, 8);
    }
  }
  void string(uint8_t major, const void* p, size_t n) {
    head(major, n);
    out_.append(static_cast<const char*>(p), n);
  }

  std::string& out_;
};

}  // namespace lapps
