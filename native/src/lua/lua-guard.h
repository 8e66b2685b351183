// Stops Lua code that runs too long, even inside JIT-compiled loops (where debug hooks never
// fire). Each thread that runs Lua marks the stretch it spends in Lua (LuaGuard::Scope) and
// publishes a deadline; a watchdog thread signals a thread that is past it, and the signal
// handler jumps back to the point where the thread entered Lua. The Lua state it left is
// then inconsistent and is never touched again: its owner frees its memory wholesale
// (LuaMemory::freeAll) and builds a fresh one.
//
// The jump is taken only where it cannot leave anything else broken: when the interrupted
// instruction is in LuaJIT itself or in JIT-compiled code (anonymous executable memory),
// never inside libc, the C++ runtime or lapps's own code (which may hold a lock or be half
// way through an update). Elsewhere the handler returns and the watchdog tries again on its
// next tick; a runaway loop spends nearly all its time in Lua, so a jump comes quickly.
#pragma once

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace lapps {

// One per thread that runs Lua.
struct LuaGuardThread {
  sigjmp_buf jmp;
  volatile sig_atomic_t armed = 0;  // jmp is valid: the thread is inside a Scope
  int depth = 0;                    // nested Scopes (Lua -> C -> Lua)
};

LuaGuardThread& luaGuardThread();

// deadlineMs while Lua runs with no time limit.
inline constexpr uint64_t kInLuaNoDeadline = ~uint64_t(0);

// What the watchdog watches for one Lua state.
struct LuaDeadline {
  std::atomic<uint64_t> deadlineMs{0};  // monotonic ms; 0 = not running Lua
  pthread_t thread{};                   // the thread that runs it
  // One entry into Lua may run several handler calls (the dispatcher serves a batch of
  // messages): the owning thread counts each call it starts (nextCall, a plain store, no
  // clock read), and the watchdog gives the running call limitMs from when it first saw
  // the count change. So limitMs bounds one call, not the whole entry.
  std::atomic<uint32_t> calls{0};
  uint32_t limitMs = 0;  // set before the state runs; 0 = calls are not timed separately

  void nextCall() {
    calls.store(calls.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // Watchdog thread only.
  uint32_t seenCalls = 0;
  uint64_t callSeenMs = 0;
};

class Watchdog {
 public:
  Watchdog();
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void add(LuaDeadline* d);
  void remove(LuaDeadline* d);

  static uint64_t nowMs();

 private:
  void run();

  std::mutex mutex_;
  std::vector<LuaDeadline*> watched_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Installs the signal handler (once per process).
void installLuaGuardSignal();

}  // namespace lapps
