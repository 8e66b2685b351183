// A ring of pre-built client frames (RFC 6455 §5.2) of one payload size, each masked with
// its own random key, laid out back to back. Sending n messages is handing out n frames:
// consecutive frames are contiguous, so a batch is one or two iovecs and no copy.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "xoshiro.h"

namespace loadgen {

class FramePool {
 public:
  // Text frames carry ASCII letters (valid UTF-8), binary frames random bytes. The pool
  // holds between 16 and 1024 frames, about 4 MiB at most beyond that minimum.
  FramePool(uint32_t payloadSize, bool text, Xoshiro256& rng);

  size_t frameSize() const { return frameSize_; }
  size_t frames() const { return frames_; }

  // Points iov[0..return) at the next up to n frames, never using more than maxIov
  // iovecs; *taken gets how many frames that covers (>= 1 when n >= 1 and maxIov >= 1).
  int take(uint32_t n, iovec* iov, int maxIov, uint32_t* taken);

 private:
  std::vector<uint8_t> bytes_;
  size_t frameSize_ = 0;
  size_t frames_ = 0;
  size_t cursor_ = 0;
};

// Writes the header of a masked client frame (FIN set) with the given opcode, payload
// length and mask key; returns its size (6, 8 or 14 bytes).
size_t writeClientHeader(uint8_t* out, uint8_t opcode, uint64_t payloadLen, uint32_t mask);

}  // namespace loadgen
