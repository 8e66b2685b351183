// Threads that run Lua, and the C stack they need.
//
// Lua code can recurse through C: a string.gsub callback that calls gsub, __tostring that
// calls tostring, table.sort comparators, load() readers, coroutines resumed inside
// coroutines. LuaJIT bounds none of this by C stack: it stops such a recursion only when
// the coroutine's Lua stack is full (65500 slots), and a coroutine resumed inside another
// starts a fresh Lua stack. Measured with LuaJIT 2.1-20230119, one coroutine reaches its
// Lua stack limit after at most ~53 MiB of C stack (gsub: 8 KiB of C per 11 Lua slots;
// tostring, sort, load, require stay under 4 MiB), and a nested resume costs ~100 bytes of
// C but no Lua stack at all. With the 8 MiB of a default thread all of these end in SIGSEGV.
//
// So a thread that runs Lua gets kLuaThreadStackBytes of stack (address space; only the
// pages a recursion touches become memory, and LuaInstance gives deep ones back), and
// every nested resume checks that at least kLuaStackReserve is left: that is enough for
// the deepest chain one coroutine can build before its own Lua stack overflows, so the
// recursion ends in a Lua error ("stack overflow", "C stack overflow"), never in a crash.
#pragma once

#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <functional>

namespace lapps {

inline constexpr size_t kLuaThreadStackBytes = size_t(128) << 20;
inline constexpr size_t kLuaStackReserve = size_t(64) << 20;

// The C stack of the calling thread, as far as Lua is concerned.
struct LuaStack {
  uintptr_t low = 0;    // lowest usable address
  uintptr_t limit = 0;  // below this, nested resumes are refused
};
const LuaStack& luaStack();

// True when Lua code on this thread must not nest any deeper (see above).
inline bool luaStackLow() {
  return uintptr_t(__builtin_frame_address(0)) < luaStack().limit;
}

// Returns to the system the pages of this thread's stack below the caller's frame (less a
// margin): after a deep recursion they would otherwise stay resident for good.
void trimLuaStack();

// Like std::thread, with a stack of kLuaThreadStackBytes.
class LuaThread {
 public:
  LuaThread() = default;
  ~LuaThread() { join(); }
  LuaThread(const LuaThread&) = delete;
  LuaThread& operator=(const LuaThread&) = delete;

  // Starts fn on the new thread, named `name` (at most 15 characters: what `top -H`, perf and
  // /proc/<pid>/task/*/comm show); throws std::system_error if it cannot, as std::thread.
  void start(const char* name, std::function<void()> fn);
  bool joinable() const { return started_; }
  void join();

 private:
  static void* entry(void* self);

  pthread_t thread_{};
  bool started_ = false;
  std::function<void()> fn_;
  char name_[16] = {};
};

}  // namespace lapps
