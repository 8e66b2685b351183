// Masking keys for client frames (RFC 6455 §5.3). The RFC asks for keys a proxy cannot
// predict from earlier ones; a fast generator seeded per client from the kernel's CSPRNG
// gives that at a few cycles per frame, where a syscall per frame would not.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lapps {

// wyrand-style: a Weyl sequence mixed by a 64x64->128 multiply.
class MaskRng {
 public:
  MaskRng();  // seeded with getrandom (OpenSSL's RAND_bytes if that fails)

  uint32_t next() {
    state_ += 0xa0761d6478bd642full;
    const unsigned __int128 m =
        static_cast<unsigned __int128>(state_) * (state_ ^ 0xe7037ed1a0b428dbull);
    return static_cast<uint32_t>(static_cast<uint64_t>(m >> 64) ^ static_cast<uint64_t>(m));
  }

 private:
  uint64_t state_ = 0;
};

// Fills buf with n bytes from getrandom, falling back to RAND_bytes. False if both fail.
bool secureRandom(void* buf, size_t n);

}  // namespace lapps
