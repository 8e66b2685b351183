// The allocator of one Lua state: counts its bytes against a limit (going over it makes the
// allocation fail, which Lua turns into a "not enough memory" error) and links every block,
// so the whole state can be freed at once when it cannot be closed (a handler stopped in
// the middle of JIT-compiled code leaves the state inconsistent).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>

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

  void* realloc(void* ptr, size_t osize, size_t nsize) {
    Node* old = ptr ? static_cast<Node*>(ptr) - 1 : nullptr;
    if (nsize == 0) {
      if (old) {
        unlink(old);
        std::free(old);
        used_ -= osize;
      }
      return nullptr;
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
};

}  // namespace lapps
