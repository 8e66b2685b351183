// A refcounted byte buffer for outbound data. One encoded frame (e.g. a broadcast) is
// shared by every connection that queues it; the last release frees it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

namespace lapps {

class BufferPool;

class SharedBuffer {
 public:
  // The common outbound chunk size: buffers of exactly this capacity are recycled by the
  // worker's BufferPool, so a write burst costs no malloc/free (and no page faults).
  static constexpr size_t kPooledCapacity = 16 * 1024;

  // Allocates header and bytes in one block. Throws std::bad_alloc like new.
  static SharedBuffer* create(size_t capacity) {
    void* mem = std::malloc(sizeof(SharedBuffer) + capacity);
    if (!mem) throw std::bad_alloc();
    return new (mem) SharedBuffer(capacity);
  }

  void retain(uint32_t n = 1) { refs_.fetch_add(n, std::memory_order_relaxed); }
  // Gives back n references at once, with one more still held by the caller (so the count
  // cannot reach zero here).
  void drop(uint32_t n) { refs_.fetch_sub(n, std::memory_order_relaxed); }
  // Drops a reference; the last one returns the buffer to `pool` (the caller's thread's
  // pool, or null) or frees it.
  inline void release(BufferPool* pool = nullptr);

  uint8_t* data() { return reinterpret_cast<uint8_t*>(this + 1); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  size_t spare() const { return capacity_ - size_; }
  // Precondition: n <= spare().
  uint8_t* grow(size_t n) {
    uint8_t* p = data() + size_;
    size_ += n;
    return p;
  }

 private:
  friend class BufferPool;
  explicit SharedBuffer(size_t capacity) : capacity_(capacity) {}
  void destroy() {
    this->~SharedBuffer();
    std::free(this);
  }

  std::atomic<uint32_t> refs_{1};
  size_t size_ = 0;
  size_t capacity_;
};

// A worker's free list of kPooledCapacity buffers. Single-threaded: only its worker uses it.
class BufferPool {
 public:
  BufferPool() = default;
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  ~BufferPool() {
    if (stage_) stage_->release(nullptr);
    for (SharedBuffer* b : free_) b->destroy();
  }

  SharedBuffer* take(size_t capacity) {
    if (capacity == SharedBuffer::kPooledCapacity && !free_.empty()) {
      SharedBuffer* b = free_.back();
      free_.pop_back();
      b->refs_.store(1, std::memory_order_relaxed);
      b->size_ = 0;
      return b;
    }
    return SharedBuffer::create(capacity);
  }

  // Keeps an unreferenced buffer for reuse; false if it is not poolable or the pool is full.
  bool keep(SharedBuffer* b) {
    if (b->capacity_ != SharedBuffer::kPooledCapacity || free_.size() >= kMax) return false;
    free_.push_back(b);
    return true;
  }

  // The staging buffer: the frames every connection queues during one loop turn are written
  // one after another into it, each queue holding a reference to its own bytes, instead of
  // into a buffer per connection. A turn that echoes to a hundred connections then touches a
  // few cache lines of one buffer rather than a hundred 16 KiB buffers, and allocates nothing
  // (a pool of 64 could not cover a hundred private buffers: a malloc and a free each per
  // turn). Returns a buffer with at least n <= kPooledCapacity spare bytes. Once no queue
  // holds bytes in it any more, the same buffer starts over from its beginning.
  SharedBuffer* stage(size_t n) {
    if (stage_) {
      if (stage_->refs_.load(std::memory_order_acquire) == 1) stage_->size_ = 0;
      if (stage_->spare() >= n) return stage_;
      // The queues that still hold bytes in it keep it alive; the last one recycles it.
      stage_->release(this);
    }
    stage_ = take(SharedBuffer::kPooledCapacity);
    return stage_;
  }
  bool isStage(const SharedBuffer* b) const { return b == stage_; }

 private:
  static constexpr size_t kMax = 64;
  std::vector<SharedBuffer*> free_;
  SharedBuffer* stage_ = nullptr;
};

inline void SharedBuffer::release(BufferPool* pool) {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    if (pool && pool->keep(this)) return;
    destroy();
  }
}

}  // namespace lapps
