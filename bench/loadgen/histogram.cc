#include "histogram.h"

#include <cmath>

namespace loadgen {

uint64_t Histogram::upperEdge(size_t index) {
  if (index < kSub) return index;
  uint64_t j = index - kSub;
  int shift = int(j / kHalf) + 1;
  uint64_t mantissa = kHalf + j % kHalf;
  return ((mantissa + 1) << shift) - 1;
}

uint64_t Histogram::quantile(double q) const {
  if (total_ == 0) return 0;
  uint64_t rank = uint64_t(std::ceil(q * double(total_)));
  if (rank < 1) rank = 1;
  if (rank > total_) rank = total_;
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      uint64_t v = upperEdge(i);
      return v < max_ ? v : max_;
    }
  }
  return max_;
}

void Histogram::printJsonUs(FILE* out) const {
  std::fprintf(out, "{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}",
               double(quantile(0.5)) / 1e3, double(quantile(0.99)) / 1e3,
               double(quantile(0.999)) / 1e3, double(max_) / 1e3);
}

}  // namespace loadgen
