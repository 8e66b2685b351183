// Shared scaffolding of the micro-benchmarks: options, timing (best of N runs, each long
// enough to swamp clock noise) and output (a human table, or one JSON object with --json).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace lapps::bench {

using Clock = std::chrono::steady_clock;

// Tells the compiler that memory may be read and written here, so stores into buffers the
// benchmark never reads back cannot be removed and loads cannot be hoisted across it.
inline void clobberMemory() {
  asm volatile("" : : : "memory");
}

struct Options {
  bool json = false;
  double seconds = 0.4;  // timed time per run
  int runs = 3;          // best of
};

inline Options parseOptions(int argc, char** argv, const char* name) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) {
      o.json = true;
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      o.seconds = 0.1;
    } else {
      std::fprintf(stderr, "usage: %s [--json] [--quick]\n", name);
      std::exit(2);
    }
  }
  return o;
}

struct Result {
  std::string name;
  size_t payload;
  bool text;
  double framesPerSec;
  double gbytesPerSec;  // payload bytes, 1 GB = 1e9 bytes
};

// Runs `pass` (which processes `framesPerPass` frames and returns the nanoseconds it spent
// in the timed region) until `o.seconds` of timed work have accumulated, `o.runs` times,
// and keeps the best rate.
template <class Pass>
Result measure(const Options& o, std::string name, size_t payload, bool text, size_t framesPerPass,
               Pass&& pass) {
  pass();  // warm-up: caches, branch predictors, page faults
  double best = 0;
  for (int r = 0; r < o.runs; ++r) {
    const double budget = o.seconds * 1e9;
    double ns = 0;
    uint64_t frames = 0;
    while (ns < budget) {
      ns += pass();
      frames += framesPerPass;
    }
    best = std::max(best, static_cast<double>(frames) / (ns / 1e9));
  }
  return {std::move(name), payload, text, best, best * static_cast<double>(payload) / 1e9};
}

inline double elapsedNs(Clock::time_point t0, Clock::time_point t1) {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
}

inline void print(const Options& o, const char* benchmark, const std::vector<Result>& results,
                  uint64_t checksum) {
  if (o.json) {
    std::printf("{\"benchmark\":\"%s\",\"cases\":[", benchmark);
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      std::printf(
          "%s{\"case\":\"%s\",\"payload\":%zu,\"text\":%s,\"frames_per_sec\":%.0f,"
          "\"gbytes_per_sec\":%.3f}",
          i ? "," : "", r.name.c_str(), r.payload, r.text ? "true" : "false", r.framesPerSec,
          r.gbytesPerSec);
    }
    std::printf("],\"checksum\":\"%016llx\"}\n", static_cast<unsigned long long>(checksum));
    return;
  }
  std::printf("%-14s %9s %5s %14s %9s\n", "case", "payload", "text", "frames/s", "GB/s");
  for (const Result& r : results)
    std::printf("%-14s %9zu %5s %14.0f %9.2f\n", r.name.c_str(), r.payload, r.text ? "yes" : "no",
                r.framesPerSec, r.gbytesPerSec);
  std::printf("checksum %016llx\n", static_cast<unsigned long long>(checksum));
}

}  // namespace lapps::bench
