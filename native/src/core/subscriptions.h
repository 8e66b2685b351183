// One worker's broadcast subscriptions: for each channel, the handles of this worker's
// connections subscribed to it, in subscription order, kept in step with each connection's
// own list (Connection::channels) so that a connection's teardown drops its subscriptions
// without looking through every channel. Worker thread only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace lapps {

class Subscriptions {
 public:
  // Subscribes the connection `handle` (whose own list is `mine`) to `channel`; nothing
  // changes if it is subscribed already.
  void add(std::vector<uint64_t>& mine, uint64_t channel, uint64_t handle) {
    if (std::find(mine.begin(), mine.end(), channel) != mine.end()) return;
    mine.push_back(channel);
    byChannel_[channel].push_back(handle);
  }
  void remove(std::vector<uint64_t>& mine, uint64_t channel, uint64_t handle) {
    std::erase(mine, channel);
    forget(channel, handle);
  }
  // Every subscription of the connection (it is going away).
  void removeAll(std::vector<uint64_t>& mine, uint64_t handle) {
    for (uint64_t channel : mine) forget(channel, handle);
    mine.clear();
  }
  // The subscribers of `channel`, or null when it has none here.
  const std::vector<uint64_t>* of(uint64_t channel) const {
    auto it = byChannel_.find(channel);
    return it == byChannel_.end() ? nullptr : &it->second;
  }
  size_t channels() const { return byChannel_.size(); }

 private:
  void forget(uint64_t channel, uint64_t handle) {
    auto it = byChannel_.find(channel);
    if (it == byChannel_.end()) return;
    std::erase(it->second, handle);
    if (it->second.empty()) byChannel_.erase(it);  // no empty lists left behind
  }

  std::unordered_map<uint64_t, std::vector<uint64_t>> byChannel_;
};

}  // namespace lapps
