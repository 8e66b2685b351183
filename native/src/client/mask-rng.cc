#include "client/mask-rng.h"

#include <openssl/rand.h>
#include <sys/random.h>

#include <cerrno>
#include <chrono>

namespace lapps {

bool secureRandom(void* buf, size_t n) {
  auto* p = static_cast<unsigned char*>(buf);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = getrandom(p + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return RAND_bytes(p, static_cast<int>(n)) == 1;
    }
    got += static_cast<size_t>(r);
  }
  return true;
}

MaskRng::MaskRng() {
  if (!secureRandom(&state_, sizeof state_)) {
    // No entropy source at all: still distinct per client and per run, if predictable.
    state_ = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
             reinterpret_cast<uintptr_t>(this);
  }
}

}  // namespace lapps
