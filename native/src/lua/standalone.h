// A standalone service instance (LAppS "standalone"/"internal"): its own thread and loop
// (epoll, timers, tasks), running init() and then run() as a coroutine until it returns.
// run() may compute freely; its waits (nap, mqr, lapps.sleep, sockets) suspend it on this
// loop. stop() makes must_stop() true and ends its waits early; a run() that ignores both
// is stopped by the watchdog after handler_timeout_ms.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/service-factory.h"
#include "io/inbox.h"
#include "io/loop.h"
#include "io/lua-thread.h"
#include "lua/lua-instance.h"

namespace lapps {

class StandaloneRunner final : public StandaloneService, public Loop {
 public:
  explicit StandaloneRunner(std::unique_ptr<LuaInstance> instance);
  ~StandaloneRunner();
  StandaloneRunner(const StandaloneRunner&) = delete;
  StandaloneRunner& operator=(const StandaloneRunner&) = delete;

  LuaInstance& instance() { return *instance_; }
  // Starts the thread and waits until init() has returned; false if it failed.
  bool start() override;
  // Asks run() to finish (must_stop() becomes true); does not wait. If run() has not
  // returned by deadlineMs (Watchdog::nowMs clock), it is cut: its Lua code is stopped by
  // the watchdog, its waits are abandoned, and onShutdown runs. A later call may only
  // bring the deadline forward.
  void stop(uint64_t deadlineMs) override;
  void join() override;

  // Host (the rest is the Loop's): tasks through this runner's inbox.
  void post(std::function<void()> fn) override;

 private:
  void run();

  std::unique_ptr<LuaInstance> instance_;
  Inbox<std::function<void()>> tasks_;
  // Runs the service: a C stack sized for Lua (io/lua-thread.h).
  LuaThread thread_;
  std::mutex mutex_;
  std::condition_variable initDone_;
  int initState_ = 0;                      // 0 running, 1 ok, 2 failed
  std::atomic<uint64_t> stopDeadline_{0};  // 0: not stopping
  std::atomic<bool> started_{false};       // start() ran: stop() has a loop to tell
};

}  // namespace lapps
