// Broadcast channels (LAppS bcast): a message is encoded into one frame once, and every
// worker appends that same refcounted buffer to the queues of its subscribed connections.
// The registry only knows which channel ids exist; each worker keeps its own subscribers.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_set>

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

}  // namespace lapps
