// Log-linear latency histogram in the HDR style: fixed memory (~35 KiB), O(1) record,
// values kept to within 1/128 (0.8%) of their true value. Values below 256 are exact;
// above, each power of two is split into 128 linear sub-buckets. Recorded in nanoseconds,
// up to 2^41 ns (~36 min); larger values land in the last bucket (max() stays exact).
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>

namespace loadgen {

class Histogram {
 public:
  void record(uint64_t v) {
    ++counts_[indexOf(v)];
    ++total_;
    if (v > max_) max_ = v;
  }

  // Adds another histogram's samples (per-thread histograms into one).
  void merge(const Histogram& other) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    if (other.max_ > max_) max_ = other.max_;
  }

  uint64_t count() const { return total_; }
  uint64_t max() const { return max_; }
  // Smallest recorded value v such that at least fraction q (0..1] of the samples are <= v,
  // reported as the top of its bucket (never above max()). 0 when empty.
  uint64_t quantile(double q) const;
  // Prints {"p50":..,"p99":..,"p999":..,"max":..} with nanosecond samples shown in
  // microseconds.
  void printJsonUs(FILE* out) const;

 private:
  static constexpr int kSubBits = 8;  // 2^kSubBits exact values, 2^(kSubBits-1) per octave
  static constexpr uint64_t kSub = uint64_t(1) << kSubBits;
  static constexpr uint64_t kHalf = kSub / 2;
  static constexpr int kMaxMsb = 40;
  static constexpr size_t kBuckets = kSub + (kMaxMsb - kSubBits + 1) * kHalf;

  static size_t indexOf(uint64_t v) {
    if (v < kSub) return size_t(v);
    int msb = 63 - __builtin_clzll(v);
    if (msb > kMaxMsb) return kBuckets - 1;
    int shift = msb - (kSubBits - 1);  // >= 1; v >> shift is in [kHalf, kSub)
    return size_t(kSub + uint64_t(shift - 1) * kHalf + ((v >> shift) - kHalf));
  }
  static uint64_t upperEdge(size_t index);

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

}  // namespace loadgen
