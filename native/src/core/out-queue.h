// A connection's outbound queue: segments of refcounted buffers, written with writev.
// Frames queued during a loop turn go into the worker's staging buffer (BufferPool::stage),
// shared by every connection that queues in that turn; what a write leaves behind is moved
// into buffers of this queue's own (privatize), so a stalled client never pins the stage.
// Shared frames (broadcasts) are queued by reference. An empty queue owns no memory.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <cstring>
#include <vector>

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
    if (!segs_.empty()) {
      // The tail grows in place when its bytes end where its buffer's end: a buffer of ours,
      // or the stage when nobody queued behind us in it since.
      Seg& tail = segs_.back();
      if (tail.kind != Kind::Shared && tail.buf->spare() >= n &&
          tail.off + tail.len == tail.buf->size() &&
          (tail.kind == Kind::Owned || pool.isStage(tail.buf))) {
        tail.len += uint32_t(n);
        bytes_ += n;
        return tail.buf->grow(n);
      }
    }
    bytes_ += n;
    // Room for a few segments at once rather than growing one by one; kept until trim().
    if (segs_.capacity() == 0) segs_.reserve(kInitialSegments);
    if (n > kChunk) {
      SharedBuffer* b = pool.take(n);
      segs_.push_back(Seg{b, 0, uint32_t(n), Kind::Owned});
      return b->grow(n);
    }
    SharedBuffer* b = pool.stage(n);
    b->retain();
    segs_.push_back(Seg{b, uint32_t(b->size()), uint32_t(n), Kind::Staged});
    ++staged_;
    return b->grow(n);
  }

  void append(BufferPool& pool, const uint8_t* p, size_t n) { std::memcpy(append(pool, n), p, n); }

  // Queues a shared buffer (whole) by reference.
  void appendShared(SharedBuffer* b) {
    b->retain();
    appendRetained(b);
  }
  // The same, with a reference the caller took for this queue.
  void appendRetained(SharedBuffer* b) {
    if (segs_.capacity() == 0) segs_.reserve(kInitialSegments);
    segs_.push_back(Seg{b, 0, uint32_t(b->size()), Kind::Shared});
    bytes_ += b->size();
  }

  // After a write that left bytes behind: the staged ones move into buffers of our own, so
  // the stage is free to start over and a client that stopped reading holds only its bytes.
  void privatize(BufferPool& pool) {
    if (staged_ == 0) return;
    // In place: a staged segment (at most kChunk bytes) becomes one buffer of ours or joins
    // the one before it, so segments never outnumber what they were.
    size_t out = head_;
    for (size_t i = head_; i < segs_.size(); ++i) {
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
    segs_.resize(out);
    staged_ = 0;
  }

  // The first pending segment is a shared frame (a broadcast). Not empty().
  bool frontShared() const { return segs_[head_].kind == Kind::Shared; }

  // Fills `iov` with up to `max` pending segments; returns the count.
  int gather(iovec* iov, int max) const {
    int n = 0;
    for (size_t i = head_; i < segs_.size() && n < max; ++i, ++n) {
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
    if (head_ == segs_.size()) {
      // The segment table keeps its storage for the next write (no malloc per write);
      // the worker gives it back when it goes quiet (trim).
      segs_.clear();
      head_ = 0;
    }
  }

  // An empty queue gives back its segment table.
  void trim() {
    if (empty() && segs_.capacity() != 0) {
      segs_.clear();
      segs_.shrink_to_fit();
      head_ = 0;
    }
  }

  void clear(BufferPool* pool) {
    for (size_t i = head_; i < segs_.size(); ++i) segs_[i].buf->release(pool);
    segs_.clear();
    segs_.shrink_to_fit();
    head_ = 0;
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
  std::vector<Seg> segs_;
  size_t head_ = 0;
  uint64_t bytes_ = 0;
  uint32_t staged_ = 0;  // Staged segments from head_ on
};

}  // namespace lapps
