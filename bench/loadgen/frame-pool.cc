#include "frame-pool.h"

#include <algorithm>
#include <cstring>

namespace loadgen {

size_t writeClientHeader(uint8_t* out, uint8_t opcode, uint64_t payloadLen, uint32_t mask) {
  size_t n = 0;
  out[n++] = uint8_t(0x80 | opcode);
  if (payloadLen <= 125) {
    out[n++] = uint8_t(0x80 | payloadLen);
  } else if (payloadLen <= 0xFFFF) {
    out[n++] = 0x80 | 126;
    out[n++] = uint8_t(payloadLen >> 8);
    out[n++] = uint8_t(payloadLen);
  } else {
    out[n++] = 0x80 | 127;
    for (int i = 7; i >= 0; --i) out[n++] = uint8_t(payloadLen >> (8 * i));
  }
  std::memcpy(out + n, &mask, 4);
  return n + 4;
}

FramePool::FramePool(uint32_t payloadSize, bool text, Xoshiro256& rng) {
  uint8_t probe[14];
  frameSize_ = writeClientHeader(probe, 2, payloadSize, 0) + payloadSize;
  frames_ = std::clamp<size_t>((size_t(4) << 20) / frameSize_, 16, 1024);
  bytes_.resize(frameSize_ * frames_);

  std::vector<uint8_t> payload(payloadSize);
  for (size_t f = 0; f < frames_; ++f) {
    if (text) {
      for (auto& b : payload) b = uint8_t('a' + rng.next() % 26);
    } else {
      rng.fill(payload.data(), payload.size());
    }
    uint32_t mask = uint32_t(rng.next() >> 32);
    uint8_t* frame = bytes_.data() + f * frameSize_;
    size_t h = writeClientHeader(frame, text ? 1 : 2, payloadSize, mask);
    const uint8_t* key = frame + h - 4;
    for (size_t i = 0; i < payloadSize; ++i) frame[h + i] = payload[i] ^ key[i & 3];
  }
}

int FramePool::take(uint32_t n, iovec* iov, int maxIov, uint32_t* taken) {
  int used = 0;
  *taken = 0;
  while (n > 0 && used < maxIov) {
    size_t run = std::min<size_t>(n, frames_ - cursor_);
    iov[used].iov_base = bytes_.data() + cursor_ * frameSize_;
    iov[used].iov_len = run * frameSize_;
    ++used;
    cursor_ += run;
    if (cursor_ == frames_) cursor_ = 0;
    n -= uint32_t(run);
    *taken += uint32_t(run);
  }
  return used;
}

}  // namespace loadgen
