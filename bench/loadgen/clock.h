// Monotonic time in nanoseconds. clock_gettime(CLOCK_MONOTONIC) goes through the vDSO
// (a TSC read, ~20 ns), so it is cheap enough to call once per read.
#pragma once

#include <time.h>

#include <cstdint>

namespace loadgen {

inline uint64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// CPU time (user + system) this process has used, in nanoseconds.
inline uint64_t cpuNs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

inline uint64_t secondsToNs(double s) {
  return uint64_t(s * 1e9);
}

}  // namespace loadgen
