// The loops' clock: milliseconds on CLOCK_MONOTONIC_COARSE (a vDSO read, no system call).
// Its resolution is the kernel tick (often 4 ms), enough for timeouts and timers.
#pragma once

#include <time.h>

#include <cstdint>

namespace lapps {

inline uint64_t monotonicMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

// Nanoseconds on `clock`: the fairness slices time handlers with it.
inline uint64_t clockNs(clockid_t clock) {
  timespec ts;
  ::clock_gettime(clock, &ts);
  return uint64_t(ts.tv_sec) * 1000000000 + uint64_t(ts.tv_nsec);
}

}  // namespace lapps
