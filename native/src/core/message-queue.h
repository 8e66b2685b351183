// mqr: named, bounded queues between service instances (any threads). Items are opaque
// byte strings (the Lua side stores CBOR). A queue is bounded both in items and in bytes:
// its items are server memory, outside every Lua state's memory_limit, so the byte bound is
// what keeps a producer from filling the process. A consumer that finds the queue empty, or a
// producer that finds it full, may register a waiter in the same locked step; the waiter is
// notified on its own host's thread and simply tries again, so no item is ever handed to a
// waiter that has gone away.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/memory-trim.h"
#include "io/host.h"

namespace lapps {

class MessageQueue {
 public:
  // What an item costs against the byte bound besides its bytes: its slot in the deque.
  static constexpr size_t kItemOverhead = sizeof(std::string);

  MessageQueue(std::string name, size_t capacity, size_t maxBytes, MemoryTrimmer* memory)
      : name_(std::move(name)), capacity_(capacity), maxBytes_(maxBytes), memory_(memory) {}

  const std::string& name() const { return name_; }
  size_t capacity() const { return capacity_; }
  size_t maxBytes() const { return maxBytes_; }
  size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return items_.size();
  }
  size_t bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return bytes_;
  }

  enum class PostResult { Posted, Full, TooBig };

  // Appends item unless the queue is full (in items or in bytes). When full and `host` is
  // given, registers `notify` to run on `host` once there may be room and sets *waitKey.
  // An item that could never fit, even in the empty queue, is TooBig (nobody waits).
  PostResult post(std::string&& item, Host* host, std::function<void()> notify, uint64_t* waitKey) {
    const size_t cost = item.size() + kItemOverhead;
    if (cost > maxBytes_) return PostResult::TooBig;
    Waiter wake, next;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (items_.size() >= capacity_ || bytes_ + cost > maxBytes_) {
        if (host) *waitKey = enqueue(senders_, host, std::move(notify));
        return PostResult::Full;
      }
      items_.push_back(std::move(item));
      bytes_ += cost;
      if (!receivers_.empty()) {
        wake = std::move(receivers_.front());
        receivers_.pop_front();
      }
      // A receive that freed room for several items woke one sender: while room is left,
      // each successful post passes the turn on to the next one.
      if (!senders_.empty() && items_.size() < capacity_ && bytes_ < maxBytes_) {
        next = std::move(senders_.front());
        senders_.pop_front();
      }
    }
    if (wake.host) wake.host->post(std::move(wake.fn));
    if (next.host) next.host->post(std::move(next.fn));
    return PostResult::Posted;
  }

  // Takes the oldest item. When empty and `host` is given, registers `notify` as for post.
  std::optional<std::string> recv(Host* host, std::function<void()> notify, uint64_t* waitKey) {
    Waiter wake;
    std::optional<std::string> out;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (items_.empty()) {
        if (host) *waitKey = enqueue(receivers_, host, std::move(notify));
        return std::nullopt;
      }
      out = std::move(items_.front());
      items_.pop_front();
      bytes_ -= out->size() + kItemOverhead;
      // The item's buffer is freed by the receiver soon: a hint for the idle trim.
      if (memory_) memory_->noteReleased(out->size());
      if (!senders_.empty()) {
        wake = std::move(senders_.front());
        senders_.pop_front();
      }
    }
    if (wake.host) wake.host->post(std::move(wake.fn));
    return out;
  }

  // Forgets a waiter (its instance stops or is rebuilt). False if it was already notified.
  bool cancel(uint64_t key) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto* list : {&receivers_, &senders_}) {
      for (auto it = list->begin(); it != list->end(); ++it) {
        if (it->key == key) {
          list->erase(it);
          return true;
        }
      }
    }
    return false;
  }

 private:
  struct Waiter {
    uint64_t key = 0;
    Host* host = nullptr;
    std::function<void()> fn;
  };
  uint64_t enqueue(std::deque<Waiter>& list, Host* host, std::function<void()> fn) {
    uint64_t key = ++lastKey_;
    list.push_back(Waiter{key, host, std::move(fn)});
    return key;
  }

  const std::string name_;
  const size_t capacity_;
  const size_t maxBytes_;
  MemoryTrimmer* const memory_;
  std::mutex mutex_;
  std::deque<std::string> items_;
  size_t bytes_ = 0;  // items' bytes plus kItemOverhead each
  std::deque<Waiter> receivers_;
  std::deque<Waiter> senders_;
  uint64_t lastKey_ = 0;
};

// The queues of one server, by name. A queue lives as long as the server.
class MessageQueues {
 public:
  explicit MessageQueues(MemoryTrimmer* memory) : memory_(memory) {}
  static constexpr size_t kDefaultCapacity = 1024;
  // The queue named `name`, created with `capacity` and `maxBytes` if it does not exist yet.
  MessageQueue* get(const std::string& name, size_t capacity, size_t maxBytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& q = queues_[name];
    if (!q) q = std::make_unique<MessageQueue>(name, capacity, maxBytes, memory_);
    return q.get();
  }

 private:
  MemoryTrimmer* const memory_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<MessageQueue>> queues_;
};

}  // namespace lapps
