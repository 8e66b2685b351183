// The messages a connection holds back while a handler is suspended (or its slice is
// spent), in order. Nearly every connection never holds one, so the queue costs one
// pointer until it does: an empty std::deque allocates its map and a 512-byte node at
// construction (libstdc++), which was more than half of an idle connection's memory.
// Worker thread only.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <utility>

namespace lapps {

struct PendingMessage {
  std::string data;
  int opcode;
};

class PendingQueue {
 public:
  bool empty() const { return !q_; }
  size_t size() const { return q_ ? q_->size() : 0; }
  // Precondition for front and pop_front: !empty().
  PendingMessage& front() { return q_->front(); }
  void pop_front() {
    q_->pop_front();
    if (q_->empty()) q_.reset();  // a hold is over: give the deque back
  }
  void push_back(PendingMessage m) { queue().push_back(std::move(m)); }
  void push_front(PendingMessage m) { queue().push_front(std::move(m)); }
  void clear() { q_.reset(); }

 private:
  std::deque<PendingMessage>& queue() {
    if (!q_) q_ = std::make_unique<std::deque<PendingMessage>>();
    return *q_;
  }
  std::unique_ptr<std::deque<PendingMessage>> q_;  // null while empty
};

}  // namespace lapps
