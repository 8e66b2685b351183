// Timers of one host: a min-heap of deadlines with lazy cancellation (a cancelled id is
// dropped from the table and skipped when its entry reaches the top).
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <unordered_map>
#include <vector>

namespace lapps {

class TimerQueue {
 public:
  uint64_t add(uint64_t deadlineMs, std::function<void()> fn) {
    uint64_t id = ++lastId_;
    heap_.push(Entry{deadlineMs, id});
    fns_.emplace(id, std::move(fn));
    return id;
  }
  bool cancel(uint64_t id) { return fns_.erase(id) != 0; }
  bool empty() const { return fns_.empty(); }
  // Deadline of the earliest live timer, or UINT64_MAX.
  uint64_t next() {
    while (!heap_.empty() && !fns_.contains(heap_.top().id)) heap_.pop();
    return heap_.empty() ? UINT64_MAX : heap_.top().deadline;
  }
  // Runs every timer due at nowMs. Timers added meanwhile with a past deadline run on the
  // next call, so a callback that re-arms itself with 0 delay cannot starve the loop.
  void runDue(uint64_t nowMs) {
    uint64_t limit = lastId_;
    while (!heap_.empty() && heap_.top().deadline <= nowMs && heap_.top().id <= limit) {
      Entry e = heap_.top();
      heap_.pop();
      auto it = fns_.find(e.id);
      if (it == fns_.end()) continue;
      std::function<void()> fn = std::move(it->second);
      fns_.erase(it);
      fn();
    }
  }
  void clear() {
    fns_.clear();
    heap_ = {};
  }

 private:
  struct Entry {
    uint64_t deadline;
    uint64_t id;
    bool operator>(const Entry& o) const {
      return deadline != o.deadline ? deadline > o.deadline : id > o.id;
    }
  };
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
  std::unordered_map<uint64_t, std::function<void()>> fns_;
  uint64_t lastId_ = 0;
};

}  // namespace lapps
