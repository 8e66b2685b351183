// Timers of one host: a min-heap of deadlines over a table of slots, with lazy cancellation
// (a cancelled timer's slot is freed at once; its heap entry no longer matches the slot's
// generation and is skipped when it reaches the top). Slots and heap entries are reused,
// so a timer whose callback fits std::function's inline storage (a lambda capturing a
// pointer or two) allocates nothing once the queue has seen as many timers at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

namespace lapps {

class TimerQueue {
 public:
  // Returns the timer's id, never 0.
  uint64_t add(uint64_t deadlineMs, std::function<void()> fn) {
    uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      slot = uint32_t(slots_.size());
      slots_.emplace_back();
    }
    Slot& s = slots_[slot];
    s.fn = std::move(fn);
    ++live_;
    heap_.push(Entry{deadlineMs, ++lastSeq_, slot, s.gen});
    return idOf(slot, s.gen);
  }
  bool cancel(uint64_t id) {
    const uint32_t slot = uint32_t(id);
    if (slot >= slots_.size() || slots_[slot].gen != uint32_t(id >> 32)) return false;
    release(slot);
    return true;
  }
  bool empty() const { return live_ == 0; }
  // Deadline of the earliest live timer, or UINT64_MAX.
  uint64_t next() {
    while (!heap_.empty() && stale(heap_.top())) heap_.pop();
    return heap_.empty() ? UINT64_MAX : heap_.top().deadline;
  }
  // Runs every timer due at nowMs. Timers added meanwhile with a past deadline run on the
  // next call, so a callback that re-arms itself with 0 delay cannot starve the loop.
  void runDue(uint64_t nowMs) {
    const uint64_t limit = lastSeq_;
    while (!heap_.empty() && heap_.top().deadline <= nowMs && heap_.top().seq <= limit) {
      const Entry e = heap_.top();
      heap_.pop();
      if (stale(e)) continue;
      std::function<void()> fn = std::move(slots_[e.slot].fn);
      release(e.slot);
      fn();
    }
  }
  void clear() {
    for (uint32_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].fn) release(i);
    }
    heap_ = {};
  }

 private:
  struct Slot {
    std::function<void()> fn;  // empty while the slot is free
    uint32_t gen = 1;          // changes each time the slot is freed: old ids and entries die
  };
  struct Entry {
    uint64_t deadline;
    uint64_t seq;  // order of adding: equal deadlines run in that order
    uint32_t slot;
    uint32_t gen;
    bool operator>(const Entry& o) const {
      return deadline != o.deadline ? deadline > o.deadline : seq > o.seq;
    }
  };
  static uint64_t idOf(uint32_t slot, uint32_t gen) { return (uint64_t(gen) << 32) | slot; }
  bool stale(const Entry& e) const { return slots_[e.slot].gen != e.gen; }
  void release(uint32_t slot) {
    Slot& s = slots_[slot];
    s.fn = nullptr;
    if (++s.gen == 0) s.gen = 1;  // ids are never 0
    free_.push_back(slot);
    --live_;
  }

  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  size_t live_ = 0;
  uint64_t lastSeq_ = 0;
};

}  // namespace lapps
