// The allocator of one Lua state: counts its bytes against a limit (going over it makes the
// allocation fail, which Lua turns into a "not enough memory" error) and links every block,
// so the whole state can be freed at once when it cannot be closed (a handler stopped in
// the middle of JIT-compiled code leaves the state inconsistent).
//
// Small blocks (tables, strings, closures of at most kSmallMax bytes) come in 16-byte size
// classes, and a freed one is kept on its class's free list for the next allocation of
// that class: the collector frees in batches, which defeat malloc's per-thread cache, and a
// message or a handshake allocates and frees a few of them each. What the lists hold is
// bounded (kCacheMax bytes) and given back by trim() (on idle) and freeAll().
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "lua/luajit-frames.h"

namespace lapps {

class LuaMemory {
 public:
  explicit LuaMemory(size_t limit) : limit_(limit) {}
  ~LuaMemory() { freeAll(); }
  LuaMemory(const LuaMemory&) = delete;
  LuaMemory& operator=(const LuaMemory&) = delete;

  // lua_Alloc: ud is the LuaMemory.
  static void* alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
    return static_cast<LuaMemory*>(ud)->realloc(ptr, ptr ? osize : 0, nsize);
  }

  size_t used() const { return used_; }
  // Bytes held on the free lists (not in use, not counted in used()).
  size_t cached() const { return cachedBytes_; }
  // Gives the free lists' blocks back to malloc.
  void trim() {
    for (size_t c = 0; c < kClasses; ++c) {
      Node* n = free_[c];
      while (n) {
        Node* next = n->next;
        std::free(n);
        n = next;
      }
      free_[c] = nullptr;
    }
    cachedBytes_ = 0;
  }
  size_t limit() const { return limit_; }
  // Set by a refused allocation; cleared by the caller that reports it.
  bool hitLimit = false;
  // Allowed beyond the limit for a while (LuaInstance::settleMemory: LuaJIT's collector
  // allocates a smaller string table when it shrinks one, and cannot finish a cycle while
  // that is refused).
  size_t headroom = 0;
  // The lowest stack address a growing allocation was made from (see io/lua-thread.h).
  uintptr_t deepestSp = UINTPTR_MAX;
  // The limit applies only while Lua runs inside a protected call (where a failed
  // allocation becomes a Lua error). lapps's own calls into the Lua API between them (error
  // messages, references, new coroutines) must not fail: an error there would be
  // unprotected and end the process.
  bool enforce = false;

  // Frees every block still allocated (the state must never be used again).
  void freeAll() {
    trim();
    Node* n = head_.next;
    while (n != &head_) {
      Node* next = n->next;
      std::free(n);
      n = next;
    }
    head_.next = head_.prev = &head_;
    used_ = 0;
  }

 private:
  // 16 bytes: keeps the 16-byte alignment malloc gives.
  struct Node {
    Node* prev;
    Node* next;
  };

  static constexpr size_t kSmallMax = 512;  // a table's hash part of 16 slots is 384
  static constexpr size_t kClasses = kSmallMax / 16;
#ifdef LAPPS_SANITIZE
  // Under AddressSanitizer every freed block goes back to malloc, where a use after free
  // is caught.
  static constexpr size_t kCacheMax = 0;
#else
  static constexpr size_t kCacheMax = 256 * 1024;
#endif
  // The class of a small size (1-512 bytes): blocks of class c hold 16 * (c + 1) bytes.
  static size_t classOf(size_t size) {
    return (size - 1) >> 4;
  }

  void* realloc(void* ptr, size_t osize, size_t nsize) {
    Node* old = ptr ? static_cast<Node*>(ptr) - 1 : nullptr;
    if (nsize == 0) {
      if (old) {
        unlink(old);
        used_ -= osize;
        if (osize <= kSmallMax && cachedBytes_ + osize <= kCacheMax) {
          size_t c = classOf(osize);
          old->next = free_[c];
          free_[c] = old;
          cachedBytes_ += 16 * (c + 1);
        } else {
          std::free(old);
        }
      }
      return nullptr;
    }
    const bool wasSmall = old && osize <= kSmallMax;
    if (wasSmall && nsize <= kSmallMax && classOf(nsize) == classOf(osize)) {
      // Same class: the block already has the room (a shrink, or a grow within it).
      if (nsize > osize && enforce && used_ - osize + nsize > limit_ + headroom &&
          !inLuaJitTraceCompiler()) {
        hitLimit = true;
        return nullptr;
      }
      used_ = used_ - osize + nsize;
      return ptr;
    }
    if (nsize > osize) {
      const auto sp = uintptr_t(__builtin_frame_address(0));
      if (sp < deepestSp) deepestSp = sp;
      // Refused only where LuaJIT can raise the error: never inside its trace compiler
      // (see luajit-frames.h), which then goes over the limit by its own small buffers.
      if (enforce && used_ - osize + nsize > limit_ + headroom && !inLuaJitTraceCompiler()) {
        hitLimit = true;
        return nullptr;
      }
    }
    if (nsize <= kSmallMax || wasSmall) {
      // A small block is made (or leaves its class) by a copy: small blocks are always of
      // their class's full size, so any block of a class can serve any size in it.
      Node* n = nsize <= kSmallMax ? takeSmall(classOf(nsize)) : nullptr;
      if (!n) {
        size_t bytes = nsize <= kSmallMax ? 16 * (classOf(nsize) + 1) : nsize;
        n = static_cast<Node*>(std::malloc(sizeof(Node) + bytes));
        if (!n) return nullptr;
      }
      if (old) {
        std::memcpy(n + 1, ptr, osize < nsize ? osize : nsize);
        realloc(ptr, osize, 0);  // to its free list (or to malloc)
      }
      link(n);
      used_ += nsize;
      return n + 1;
    }
    if (old) unlink(old);
    Node* n = static_cast<Node*>(std::realloc(old, sizeof(Node) + nsize));
    if (!n) {
      if (old) link(old);  // realloc failed: the old block is intact
      return nullptr;
    }
    link(n);
    used_ = used_ - osize + nsize;
    return n + 1;
  }
  Node* takeSmall(size_t c) {
    Node* n = free_[c];
    if (n) {
      free_[c] = n->next;
      cachedBytes_ -= 16 * (c + 1);
    }
    return n;
  }
  void link(Node* n) {
    n->next = head_.next;
    n->prev = &head_;
    head_.next->prev = n;
    head_.next = n;
  }
  static void unlink(Node* n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
  }

  size_t limit_;
  size_t used_ = 0;
  Node head_{&head_, &head_};
  Node* free_[kClasses] = {};  // per class, linked through Node::next
  size_t cachedBytes_ = 0;
};

}  // namespace lapps
