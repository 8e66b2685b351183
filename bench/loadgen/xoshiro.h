// xoshiro256** (Blackman & Vigna), seeded from getrandom(2). Not a CSPRNG itself, but
// CSPRNG-seeded and unpredictable to a server that does not see the seed, which is what
// RFC 6455 masking asks of a client; fast enough to build frames and keys in bulk.
#pragma once

#include <cstddef>
#include <cstdint>

namespace loadgen {

class Xoshiro256 {
 public:
  // Seeds from the kernel CSPRNG; exits the process if getrandom(2) fails.
  Xoshiro256();

  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Fills n bytes.
  void fill(uint8_t* out, size_t n);

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace loadgen
