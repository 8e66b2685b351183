// Broadcast channels (LAppS bcast): a message is encoded into one frame once, and every
// worker appends that same refcounted buffer to the queues of its subscribed connections.
// The registry only knows which channel ids exist; each worker keeps its own subscribers.
#pragma once

#include <cstdint>
#include <cstring>
#include <mutex>
#include <unordered_set>

#include "core/shared-buffer.h"
#include "protocol/frame-encoder.h"

namespace lapps {

class BroadcastRegistry {
 public:
  // True if the channel was created now, false if it existed already (both are fine).
  bool create(uint64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    return channels_.insert(id).second;
  }
  bool exists(uint64_t id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return channels_.count(id) != 0;
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_set<uint64_t> channels_;
};

// The one frame every subscriber's queue will share: header and payload in one buffer,
// holding one reference for the caller.
inline SharedBuffer* encodeBroadcastFrame(Opcode op, const uint8_t* data, size_t len) {
  uint8_t header[kMaxHeaderSize];
  size_t h = encodeHeader(header, op, len, true);
  SharedBuffer* frame = SharedBuffer::create(h + len);
  uint8_t* dst = frame->grow(h + len);
  std::memcpy(dst, header, h);
  if (len) std::memcpy(dst + h, data, len);
  return frame;
}

}  // namespace lapps
