// A connection's outbound queue: segments of refcounted buffers, written with writev.
// Small frames are appended to the tail segment while this connection owns it alone;
// shared frames (broadcasts) are queued by reference. An empty queue owns no memory.
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
      Seg& tail = segs_.back();
      if (tail.owned && tail.buf->spare() >= n) {
        tail.len += n;
        bytes_ += n;
        return tail.buf->grow(n);
      }
    }
    SharedBuffer* b = pool.take(n > kChunk ? n : kChunk);
    segs_.push_back(Seg{b, 0, uint32_t(n), true});
    bytes_ += n;
    return b->grow(n);
  }

  void append(BufferPool& pool, const uint8_t* p, size_t n) { std::memcpy(append(pool, n), p, n); }

  // Queues a shared buffer (whole) by reference.
  void appendShared(SharedBuffer* b) {
    b->retain();
    segs_.push_back(Seg{b, 0, uint32_t(b->size()), false});
    bytes_ += b->size();
  }

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
        // A partly written owned tail must not take appends any more: appends would land
        // behind its unwritten part correctly, but keeping it simple costs nothing here.
        return;
      }
      n -= s.len;
      s.buf->release(&pool);
      ++head_;
    }
    if (head_ == segs_.size()) {
      segs_.clear();
      head_ = 0;
      if (segs_.capacity() > 16) segs_.shrink_to_fit();
    }
  }

  void clear(BufferPool* pool) {
    for (size_t i = head_; i < segs_.size(); ++i) segs_[i].buf->release(pool);
    segs_.clear();
    segs_.shrink_to_fit();
    head_ = 0;
    bytes_ = 0;
  }

 private:
  struct Seg {
    SharedBuffer* buf;
    uint32_t off;
    uint32_t len;
    bool owned;  // only this queue writes to buf: appends may extend it
  };
  std::vector<Seg> segs_;
  size_t head_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace lapps
