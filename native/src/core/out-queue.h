// A connection's outbound queue: segments of refcounted buffers, written with writev.
// Frames queued during a loop turn go into the worker's staging buffer (BufferPool::stage),
// shared by every connection that queues in that turn; what a write leaves behind is moved
// into buffers of this queue's own (privatize), so a stalled client never pins the stage.
// Shared frames (broadcasts) are queued by reference. An empty queue owns no memory.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

#include "core/shared-buffer.h"

namespace lapps {

class OutQueue {
 public:
  static constexpr size_t kChunk = SharedBuffer::kPooledCapacity;
  static constexpr size_t kInitialSegments = 8;

  OutQueue() = default;
  OutQueue(const OutQueue&) = delete;
  OutQueue& operator=(const OutQueue&) = delete;
  ~OutQueue() { clear(nullptr); }

  bool empty() const { return bytes_ == 0; }
  uint64_t bytes() const { return bytes_; }

  // Reserves `n` contiguous writable bytes at the tail and returns them; the caller fills
  // all of them. New buffers come from `pool` (the worker's).
  uint8_t* append(BufferPool& pool, size_t n) {
    if (size_ != 0) {
      // The tail grows in place when its bytes end where its buffer's end: a buffer of ours,
      // or the stage when nobody queued behind us in it since.
      Seg& tail = segs_[size_ - 1];
      if (tail.kind != Kind::Shared && tail.buf->spare() >= n &&
          tail.off + tail.len == tail.buf->size() &&
          (tail.kind == Kind::Owned || pool.isStage(tail.buf))) {
        tail.len += uint32_t(n);
        bytes_ += n;
        return tail.buf->grow(n);
      }
    }
    bytes_ += n;
    if (n > kChunk) {
      SharedBuffer* b = pool.take(n);
      push(Seg{b, 0, uint32_t(n), Kind::Owned});
      return b->grow(n);
    }
    SharedBuffer* b = pool.stage(n);
    b->retain();
    push(Seg{b, uint32_t(b->size()), uint32_t(n), Kind::Staged});
    ++staged_;
    return b->grow(n);
  }

  void append(BufferPool& pool, const uint8_t* p, size_t n) { std::memcpy(append(pool, n), p, n); }

  // Queues a shared buffer (whole) by reference.
  void appendShared(SharedBuffer* b) {
    b->retain();
    appendRetained(b);
  }
  // The same, with a reference the caller took for this queue; from byte `off` on (the
  // socket took the bytes before it).
  void appendRetained(SharedBuffer* b, size_t off = 0) {
    push(Seg{b, uint32_t(off), uint32_t(b->size() - off), Kind::Shared});
    bytes_ += b->size() - off;
  }

  // After a write that left bytes behind: the staged ones move into buffers of our own, so
  // the stage is free to start over and a client that stopped reading holds only its bytes.
  void privatize(BufferPool& pool) {
    if (staged_ == 0) return;
    // In place: a staged segment (at most kChunk bytes) becomes one buffer of ours or joins
    // the one before it, so segments never outnumber what they were.
    uint32_t out = head_;
    for (uint32_t i = head_; i < size_; ++i) {
      Seg s = segs_[i];
      if (s.kind == Kind::Staged) {
        const uint8_t* src = s.buf->data() + s.off;
        Seg* prev = out > head_ ? &segs_[out - 1] : nullptr;
        if (prev && prev->kind == Kind::Owned && prev->off + prev->len == prev->buf->size() &&
            prev->buf->spare() >= s.len) {
          std::memcpy(prev->buf->grow(s.len), src, s.len);
          prev->len += s.len;
          s.buf->release(&pool);
          continue;
        }
        SharedBuffer* b = pool.take(kChunk);
        std::memcpy(b->grow(s.len), src, s.len);
        s.buf->release(&pool);
        s = Seg{b, 0, s.len, Kind::Owned};
      }
      segs_[out++] = s;
    }
    size_ = out;
    staged_ = 0;
  }

  // The first pending segment is a shared frame (a broadcast). Not empty().
  bool frontShared() const { return segs_[head_].kind == Kind::Shared; }

  // Fills `iov` with up to `max` pending segments; returns the count.
  int gather(iovec* iov, int max) const {
    int n = 0;
    for (uint32_t i = head_; i < size_ && n < max; ++i, ++n) {
      iov[n].iov_base = segs_[i].buf->data() + segs_[i].off;
      iov[n].iov_len = segs_[i].len;
    }
    return n;
  }

  // Drops `n` written bytes from the front; emptied buffers go back to `pool`.
  void consume(BufferPool& pool, size_t n) {
    bytes_ -= n;
    while (n > 0) {
      Seg& s = segs_[head_];
      if (n < s.len) {
        s.off += uint32_t(n);
        s.len -= uint32_t(n);
        return;
      }
      n -= s.len;
      if (s.kind == Kind::Staged) --staged_;
      s.buf->release(&pool);
      ++head_;
    }
    if (head_ == size_) {
      // The segment table keeps its storage for the next write (no malloc per write);
      // the worker gives it back when it goes quiet (trim).
      size_ = 0;
      head_ = 0;
    }
  }

  // An empty queue gives back its segment table.
  void trim() {
    if (empty() && segs_) freeTable();
  }

  void clear(BufferPool* pool) {
    for (uint32_t i = head_; i < size_; ++i) segs_[i].buf->release(pool);
    freeTable();
    bytes_ = 0;
    staged_ = 0;
  }

 private:
  enum class Kind : uint8_t {
    Owned,   // a buffer only this queue writes to: appends may extend it
    Staged,  // our bytes in the worker's staging buffer
    Shared,  // a whole frame shared with other queues (a broadcast), never extended
  };
  struct Seg {
    SharedBuffer* buf;
    uint32_t off;
    uint32_t len;
    Kind kind;
  };
  static_assert(std::is_trivially_copyable_v<Seg>);

  void push(const Seg& s) {
    if (size_ == cap_) [[unlikely]]
      growTable();
    segs_[size_++] = s;
  }
  // Room for a few segments at first rather than growing one by one; then doubling.
  __attribute__((noinline)) void growTable() {
    const uint32_t cap = cap_ ? cap_ * 2 : uint32_t(kInitialSegments);
    void* p = std::realloc(static_cast<void*>(segs_), size_t(cap) * sizeof(Seg));
    if (!p) throw std::bad_alloc();
    segs_ = static_cast<Seg*>(p);
    cap_ = cap;
  }
  void freeTable() {
    std::free(static_cast<void*>(segs_));
    segs_ = nullptr;
    size_ = cap_ = head_ = 0;
  }

  // A table of its own rather than a std::vector: 32 bytes in every connection, not 48
  // (docs/memory.md).
  Seg* segs_ = nullptr;
  uint32_t size_ = 0;  // segments in the table; head_ is the first pending one
  uint32_t cap_ = 0;
  uint32_t head_ = 0;
  uint32_t staged_ = 0;  // Staged segments from head_ on
  uint64_t bytes_ = 0;
};

}  // namespace lapps
