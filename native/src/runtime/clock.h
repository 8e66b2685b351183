// The coarse monotonic clock every loop and deadline in lapps is measured on (ms).
#pragma once

#include <time.h>

#include <cstdint>

namespace lapps {

inline uint64_t coarseMonotonicMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

}  // namespace lapps
