// mqr: named, bounded queues between service instances (any threads). Items are opaque
// byte strings (the Lua side stores CBOR). A queue is bounded both in items and in bytes:
// its items are server memory, outside every Lua state's memory_limit, so the byte bound is
// what keeps a producer from filling the process.
//
// Built for a producer and consumers on different threads passing millions of small items
// a second (docs/lua-api.md, "mqr"):
// - the items sit in a ring of fixed 64-byte slots; an item of up to kInlineBytes is stored
//   in its slot, so small items cost no allocation and no free on another thread;
// - a consumer takes a batch of items in one locked step (QueueBatch) and hands them out
//   one by one without the lock; the batch gives back what it did not hand out, to the
//   front of the queue, when it is destroyed (its instance stops);
// - a consumer that finds the queue empty, or a producer that finds it full, registers a
//   waiter in the same locked step; the waiter is notified on its own host's thread and
//   simply tries again, so no item is ever handed to a waiter that has gone away. A
//   waiting producer is woken only once the queue has drained to half its bounds
//   (hysteresis), so a full queue costs one wake-up per half queue, not one per item.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/memory-trim.h"
#include "io/host.h"

namespace lapps {

class QueueBatch;

// The queue's lock: glibc's adaptive mutex spins briefly before it sleeps. The lock is held
// for a few dozen nanoseconds, so a producer and a consumer that meet on it pass each other
// in the spin instead of a futex sleep and wake-up.
class QueueMutex {
 public:
  QueueMutex() {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    pthread_mutex_init(&m_, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  ~QueueMutex() {
    pthread_mutex_destroy(&m_);
  }
  QueueMutex(const QueueMutex&) = delete;
  QueueMutex& operator=(const QueueMutex&) = delete;
  void lock() {
    pthread_mutex_lock(&m_);
  }
  void unlock() {
    pthread_mutex_unlock(&m_);
  }

 private:
  pthread_mutex_t m_;
};

class MessageQueue {
 public:
  static constexpr size_t kInlineBytes = 48;
  // One slot of the ring. Trivially copyable: the ring and the batches move slots by copy;
  // whoever holds a slot owns its heap block.
  struct Item {
    uint32_t size;
    char* heap;  // the bytes when they do not fit inline (malloc'd), else nullptr
    char inl[kInlineBytes];
    const char* data() const { return heap ? heap : inl; }
    void release() {
      std::free(heap);
      heap = nullptr;
    }
  };
  static_assert(sizeof(Item) == 64);
  // What an item costs against the byte bound besides its bytes: its slot.
  static constexpr size_t kItemOverhead = sizeof(Item);
  // A consumer's batch: at most this many items, and past its first item no more than
  // kBatchBytes of them.
  static constexpr size_t kBatchItems = 64;
  static constexpr size_t kBatchBytes = 64 * 1024;

  MessageQueue(std::string name, size_t capacity, size_t maxBytes, MemoryTrimmer* memory)
      : name_(std::move(name)),
        capacity_(capacity),
        maxBytes_(maxBytes),
        lowItems_(capacity / 2),
        lowBytes_(maxBytes / 2),
        memory_(memory) {}
  ~MessageQueue() {
    for (size_t i = 0; i < count_; ++i) at(i).release();
  }
  MessageQueue(const MessageQueue&) = delete;
  MessageQueue& operator=(const MessageQueue&) = delete;

  const std::string& name() const { return name_; }
  size_t capacity() const { return capacity_; }
  size_t maxBytes() const { return maxBytes_; }
  // Items not yet handed to a consumer: in the queue and in the consumers' batches.
  size_t size();
  // Bytes (with kItemOverhead each) of the items in the queue.
  size_t bytes() {
    std::lock_guard<QueueMutex> lock(mutex_);
    return bytes_;
  }

  enum class PostResult { Posted, Full, TooBig };

  // Appends a copy of data[0..n) unless the queue is full (in items or in bytes). When full
  // and `host` is given, registers `notify` to run on `host` once the queue has drained to
  // half its bounds (or further) and sets *waitKey. An item that could never fit, even in
  // the empty queue, is TooBig (nobody waits).
  PostResult post(const char* data, size_t n, Host* host, std::function<void()> notify,
                  uint64_t* waitKey) {
    const size_t cost = n + kItemOverhead;
    if (cost > maxBytes_ || n > UINT32_MAX) return PostResult::TooBig;
    Item item;
    item.size = uint32_t(n);
    item.heap = nullptr;
    if (n <= kInlineBytes) {
      std::memcpy(item.inl, data, n);
    } else {
      // Allocated outside the lock; freed again only on the slow path (full).
      item.heap = static_cast<char*>(std::malloc(n));
      if (!item.heap) throw std::bad_alloc();
      std::memcpy(item.heap, data, n);
    }
    Waiter wake, next;
    {
      std::lock_guard<QueueMutex> lock(mutex_);
      if (count_ >= capacity_ || bytes_ + cost > maxBytes_) {
        if (host) *waitKey = enqueue(senders_, host, std::move(notify));
        item.release();
        return PostResult::Full;
      }
      if (count_ == ringSize_) grow(count_ + 1);
      at(count_++) = item;
      available_.store(count_, std::memory_order_relaxed);
      bytes_ += cost;
      if (!receivers_.empty()) {
        wake = std::move(receivers_.front());
        receivers_.pop_front();
      }
      // A drained queue woke one sender: while room is left, each successful post passes
      // the turn on to the next one.
      if (!senders_.empty() && count_ < capacity_ && bytes_ < maxBytes_) {
        next = std::move(senders_.front());
        senders_.pop_front();
      }
    }
    if (wake.host) wake.host->post(std::move(wake.fn));
    if (next.host) next.host->post(std::move(next.fn));
    return PostResult::Posted;
  }

  // Moves up to `most` of the oldest items (fewer: see kBatchItems, kBatchBytes) into
  // `out`, which must be empty, and returns how many. The caller hands out the first of
  // them at once (out.pop()): size() no longer counts it, even on a thread that a wake-up
  // of this take lets run before that pop. When the queue is empty and `host` is given,
  // registers `notify` as for post.
  size_t take(QueueBatch& out, size_t most, Host* host, std::function<void()> notify,
              uint64_t* waitKey);

  // Forgets a waiter (its instance stops or is rebuilt). False if it was already notified.
  // A consumer that found the queue empty: watches it (without the lock) for up to
  // `spinNs` nanoseconds before it registers a waiter and suspends. Between looks it yields
  // the core, so a producer on the same core goes on; an idle queue costs this once per
  // wait, then nothing. True if items appeared.
  bool spinForItems(uint64_t spinNs) {
    const uint64_t until = monoNs() + spinNs;
    for (;;) {
      for (int i = 0; i < 32; ++i) {
        if (available_.load(std::memory_order_relaxed)) return true;
        cpuRelax();
      }
      if (monoNs() >= until) return available_.load(std::memory_order_relaxed) != 0;
      sched_yield();
    }
  }

  bool cancel(uint64_t key) {
    std::lock_guard<QueueMutex> lock(mutex_);
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
  friend class QueueBatch;
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
  static void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  static uint64_t monoNs() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
  }
  Item& at(size_t i) {
    return ring_[(head_ + i) & (ringSize_ - 1)];
  }
  // Makes the ring hold at least `need` slots (a power of two), keeping the order. The ring
  // grows with use, never past what the bounds let in (plus what batches gave back), and
  // is freed when the queue empties after it grew large.
  void grow(size_t need) {
    size_t n = ringSize_ ? ringSize_ : 16;
    while (n < need) n *= 2;
    std::unique_ptr<Item[]> ring(new Item[n]);
    for (size_t i = 0; i < count_; ++i) ring[i] = at(i);
    ring_ = std::move(ring);
    ringSize_ = n;
    head_ = 0;
  }
  // Batches count in size(); under the lock.
  void attach(QueueBatch* b) {
    batches_.push_back(b);
  }
  void detach(QueueBatch* b) {
    std::erase(batches_, b);
  }
  // Puts items[0..n) back at the front of the queue, in order (a batch that is destroyed).
  void giveBack(const Item* items, size_t n);

  static constexpr size_t kKeepRingSlots = 4096;  // 256 KiB: kept when the queue empties

  const std::string name_;
  const size_t capacity_;
  const size_t maxBytes_;
  const size_t lowItems_;  // a waiting sender is woken at or below these
  const size_t lowBytes_;
  MemoryTrimmer* const memory_;
  QueueMutex mutex_;
  // count_, readable without the lock (by a consumer spinning for items).
  std::atomic<size_t> available_{0};
  std::unique_ptr<Item[]> ring_;
  size_t ringSize_ = 0;  // a power of two, or 0
  size_t head_ = 0;
  size_t count_ = 0;
  size_t bytes_ = 0;  // the items' bytes plus kItemOverhead each
  std::deque<Waiter> receivers_;
  std::deque<Waiter> senders_;
  std::vector<QueueBatch*> batches_;
  uint64_t lastKey_ = 0;
};

// Items one consumer took from a queue in one locked step, handed out one at a time by the
// consumer's thread alone. Destroying it gives back what was not handed out.
class QueueBatch {
 public:
  explicit QueueBatch(MessageQueue* q) : q_(q) {
    std::lock_guard<QueueMutex> lock(q_->mutex_);
    q_->attach(this);
  }
  ~QueueBatch() {
    if (next_ < count_) q_->giveBack(items_ + next_, count_ - next_);
    std::lock_guard<QueueMutex> lock(q_->mutex_);
    q_->detach(this);
  }
  QueueBatch(const QueueBatch&) = delete;
  QueueBatch& operator=(const QueueBatch&) = delete;

  MessageQueue* queue() const { return q_; }
  bool empty() const { return next_ == count_; }
  // Hands out the oldest item; the caller owns its heap block (release()). Not empty().
  MessageQueue::Item pop() {
    MessageQueue::Item it = items_[next_++];
    left_.store(count_ - next_, std::memory_order_relaxed);
    return it;
  }

 private:
  friend class MessageQueue;
  MessageQueue* const q_;
  uint32_t next_ = 0;
  uint32_t count_ = 0;
  std::atomic<uint32_t> left_{0};  // count_ - next_, for size() on other threads
  MessageQueue::Item items_[MessageQueue::kBatchItems];
};

inline size_t MessageQueue::size() {
  std::lock_guard<QueueMutex> lock(mutex_);
  size_t n = count_;
  for (QueueBatch* b : batches_) n += b->left_.load(std::memory_order_relaxed);
  return n;
}

inline size_t MessageQueue::take(QueueBatch& out, size_t most, Host* host,
                                 std::function<void()> notify, uint64_t* waitKey) {
  Waiter wake;
  size_t n = 0;
  size_t heapBytes = 0;
  {
    std::lock_guard<QueueMutex> lock(mutex_);
    if (count_ == 0) {
      if (host) *waitKey = enqueue(receivers_, host, std::move(notify));
      return 0;
    }
    // Half of what is there (at least one): consumers that come one after the other share
    // a short queue instead of the first taking all of it.
    most = std::min({most, kBatchItems, count_ - count_ / 2});
    size_t batchBytes = 0;
    while (n < most) {
      Item& it = at(n);
      if (n > 0 && batchBytes + it.size > kBatchBytes) break;
      batchBytes += it.size;
      if (it.heap) heapBytes += it.size;
      out.items_[n++] = it;
    }
    head_ = (head_ + n) & (ringSize_ - 1);
    count_ -= n;
    available_.store(count_, std::memory_order_relaxed);
    bytes_ -= batchBytes + n * kItemOverhead;
    out.next_ = 0;
    out.count_ = uint32_t(n);
    out.left_.store(uint32_t(n - 1), std::memory_order_relaxed);  // the first is handed out
    if (count_ == 0 && ringSize_ > kKeepRingSlots) {
      ring_.reset();
      ringSize_ = 0;
      head_ = 0;
    }
    // Hysteresis: a waiting sender goes on once the queue is down to half its bounds.
    if (!senders_.empty() && count_ <= lowItems_ && bytes_ <= lowBytes_) {
      wake = std::move(senders_.front());
      senders_.pop_front();
    }
  }
  // The items' blocks are freed by the consumer soon: a hint for the idle trim.
  if (memory_ && heapBytes) memory_->noteReleased(heapBytes);
  if (wake.host) wake.host->post(std::move(wake.fn));
  return n;
}

inline void MessageQueue::giveBack(const Item* items, size_t n) {
  Waiter wake;
  {
    std::lock_guard<QueueMutex> lock(mutex_);
    // Back in front of what was posted since: the queue may hold up to a batch more than
    // its capacity for a while (posts wait until it drains).
    if (count_ + n > ringSize_) grow(count_ + n);
    head_ = (head_ - n) & (ringSize_ - 1);
    for (size_t i = 0; i < n; ++i) {
      at(i) = items[i];
      bytes_ += items[i].size + kItemOverhead;
    }
    count_ += n;
    available_.store(count_, std::memory_order_relaxed);
    if (!receivers_.empty()) {
      wake = std::move(receivers_.front());
      receivers_.pop_front();
    }
  }
  if (wake.host) wake.host->post(std::move(wake.fn));
}

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
