#include "xoshiro.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace loadgen {

Xoshiro256::Xoshiro256() {
  auto* p = reinterpret_cast<uint8_t*>(s_);
  size_t got = 0;
  while (got < sizeof(s_)) {
    ssize_t n = getrandom(p + got, sizeof(s_) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "lapps-loadgen: getrandom: %s\n", std::strerror(errno));
      std::exit(1);
    }
    got += size_t(n);
  }
  // The all-zero state is the one fixed point; 2^-256 odds, but cheap to rule out.
  if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;
}

void Xoshiro256::fill(uint8_t* out, size_t n) {
  while (n >= 8) {
    uint64_t v = next();
    std::memcpy(out, &v, 8);
    out += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t v = next();
    std::memcpy(out, &v, n);
  }
}

}  // namespace loadgen
