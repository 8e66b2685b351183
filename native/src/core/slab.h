// Fixed-size records (one worker's connections) packed in blocks of their own rather than
// one malloc chunk each: no allocator header per record, and the handshake's short-lived
// allocations (its buffer, the 101) do not end up between long-lived records, where the
// holes they leave keep pages resident after they are freed (docs/memory.md). A block that
// holds no connection any more goes back when the worker goes quiet (release).
// Worker thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define LAPPS_SLAB_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define LAPPS_SLAB_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define LAPPS_SLAB_POISON(p, n) ((void)(p), (void)(n))
#define LAPPS_SLAB_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace lapps {

// T names its block (uint32_t T::slabBlock): set by make, read by destroy.
template <class T>
class Slab {
 public:
  static constexpr size_t kBlockBytes = 64 * 1024;
  static constexpr uint32_t kPerBlock = uint32_t(kBlockBytes / sizeof(T));
  static_assert(kPerBlock >= 2);

  Slab() = default;
  Slab(const Slab&) = delete;
  Slab& operator=(const Slab&) = delete;
  // Records still made are the owner's to destroy first.
  ~Slab() {
    for (Block& b : blocks_) std::free(b.mem);
  }

  template <class... Args>
  T* make(Args&&... args) {
    if (open_.empty()) [[unlikely]]
      addBlock();
    const uint32_t bi = open_.back();
    Block& b = blocks_[bi];
    void* p = b.free;
    LAPPS_SLAB_UNPOISON(p, sizeof(T));
    b.free = *static_cast<void**>(p);
    if (++b.live == kPerBlock) open_.pop_back();
    T* t = new (p) T(std::forward<Args>(args)...);
    t->slabBlock = bi;
    return t;
  }

  void destroy(T* t) {
    const uint32_t bi = t->slabBlock;
    t->~T();
    Block& b = blocks_[bi];
    *reinterpret_cast<void**>(t) = b.free;
    b.free = t;
    LAPPS_SLAB_POISON(reinterpret_cast<char*>(t) + sizeof(void*), sizeof(T) - sizeof(void*));
    if (b.live-- == kPerBlock) open_.push_back(bi);
  }

  // Frees the blocks that hold no record; returns the bytes given back.
  size_t release() {
    size_t freed = 0;
    for (Block& b : blocks_) {
      if (b.mem && b.live == 0) {
        LAPPS_SLAB_UNPOISON(b.mem, kBlockBytes);
        std::free(b.mem);
        b.mem = nullptr;
        b.free = nullptr;
        freed += kBlockBytes;
      }
    }
    if (freed) {
      open_.clear();
      for (uint32_t i = 0; i < blocks_.size(); ++i) {
        if (blocks_[i].mem && blocks_[i].live < kPerBlock) open_.push_back(i);
      }
    }
    return freed;
  }

  size_t blocks() const {
    size_t n = 0;
    for (const Block& b : blocks_) n += b.mem != nullptr;
    return n;
  }

 private:
  struct Block {
    void* mem = nullptr;
    void* free = nullptr;  // its free records, linked through their first word
    uint32_t live = 0;
  };

  __attribute__((noinline)) void addBlock() {
    uint32_t bi = 0;
    while (bi < blocks_.size() && blocks_[bi].mem) ++bi;  // a place a released block left
    if (bi == blocks_.size()) blocks_.emplace_back();
    Block& b = blocks_[bi];
    b.mem = std::malloc(kBlockBytes);
    if (!b.mem) throw std::bad_alloc();
    b.live = 0;
    b.free = nullptr;
    // Linked so that the first record made is the first in the block.
    char* base = static_cast<char*>(b.mem);
    for (uint32_t i = kPerBlock; i-- > 0;) {
      void* p = base + size_t(i) * sizeof(T);
      *static_cast<void**>(p) = b.free;
      b.free = p;
    }
    LAPPS_SLAB_POISON(base, kBlockBytes);
    for (char* p = static_cast<char*>(b.free); p;) {
      LAPPS_SLAB_UNPOISON(p, sizeof(void*));
      p = *reinterpret_cast<char**>(p);
    }
    open_.push_back(bi);
  }

  std::vector<Block> blocks_;
  std::vector<uint32_t> open_;  // blocks with a free record
};

}  // namespace lapps
