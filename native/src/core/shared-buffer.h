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

class SharedBuffer {
 public:
  // The common outbound chunk size; buffers of exactly this capacity are recycled per
  // thread, so a write burst does not cost a malloc/free (and page faults) every time.
  static constexpr size_t kPooledCapacity = 16 * 1024;

  // Allocates header and bytes in one block. Throws std::bad_alloc like new.
  static SharedBuffer* create(size_t capacity) {
    if (capacity == kPooledCapacity) {
      Pool& pool = threadPool();
      if (!pool.free.empty()) {
        SharedBuffer* b = pool.free.back();
        pool.free.pop_back();
        b->refs_.store(1, std::memory_order_relaxed);
        b->size_ = 0;
        return b;
      }
    }
    void* mem = std::malloc(sizeof(SharedBuffer) + capacity);
    if (!mem) throw std::bad_alloc();
    return new (mem) SharedBuffer(capacity);
  }

  void retain() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      if (capacity_ == kPooledCapacity) {
        Pool& pool = threadPool();
        if (pool.free.size() < Pool::kMax) {
          pool.free.push_back(this);
          return;
        }
      }
      this->~SharedBuffer();
      std::free(this);
    }
  }
  bool unique() const { return refs_.load(std::memory_order_acquire) == 1; }

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
  struct Pool {
    static constexpr size_t kMax = 64;
    std::vector<SharedBuffer*> free;
    ~Pool() {
      for (SharedBuffer* b : free) {
        b->~SharedBuffer();
        std::free(b);
      }
    }
  };
  static Pool& threadPool() {
    thread_local Pool pool;
    return pool;
  }

  explicit SharedBuffer(size_t capacity) : capacity_(capacity) {}
  std::atomic<uint32_t> refs_{1};
  size_t size_ = 0;
  size_t capacity_;
};

}  // namespace lapps
