// One instance of a Lua service: its own lua_State (with its own allocator and memory
// limit), bound to one host: an IO worker for a reactive service, its own thread for a
// standalone one. Called only on that host's thread. Every call into Lua is protected and
// guarded against running too long; errors are logged with their traceback, counted, and
// never thrown through C++. An instance that keeps failing, or whose code had to be stopped
// mid-flight, gets a fresh Lua state.
//
// Handlers run in coroutines so they can suspend (lapps.sleep, mqr recv, sockets) without
// blocking the loop: onMessage runs on a dispatcher coroutine that serves batch after batch;
// when a handler suspends, that coroutine is parked with it, the connection's later
// messages wait (ServiceHost::hold), and a new dispatcher takes over the other connections.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/event-channel.h"
#include "core/service-instance.h"
#include "core/settings.h"
#include "io/host.h"
#include "lua/lapps-protocol.h"
#include "lua/lua-guard.h"
#include "lua/lua-memory.h"

struct lua_State;

namespace lapps {

// Something a Lua state owns outside Lua memory (a client socket): deleted by the
// instance when the state goes away, even when the state cannot be closed normally.
class InstanceResource {
 public:
  virtual ~InstanceResource() = default;
};

class LuaInstance final : public ServiceInstance {
 public:
  enum class Role : uint8_t { Reactive, Standalone };

  LuaInstance(const ServiceSettings& service, uint32_t index, EventChannel& events, Role role);
  ~LuaInstance();
  LuaInstance(const LuaInstance&) = delete;
  LuaInstance& operator=(const LuaInstance&) = delete;

  // Creates the state, registers the modules, runs the service file and checks its entry
  // points. Returns "" or an error naming the file.
  std::string load() override;

  // Reactive entry points (ServiceInstance).
  void onStart() override;
  ConnectVerdict onConnect(uint64_t handle, const ConnectRequest& request) override;
  void onMessages(MessageBatch& batch) override;
  void onDisconnect(uint64_t handle) override;
  void onShutdown() override;
  size_t onIdle() override;

  // Standalone entry points, on the service's own thread: init() (false if it failed), then
  // run() as a coroutine; runFinished() once it has returned (or failed, or was stopped).
  bool runInit();
  void startRun();
  bool runFinished() const { return runDone_; }
  // must_stop() becomes true; every suspended coroutine is woken (its wait returns early).
  void requestStop();
  // Any thread: must_stop() becomes true now, even for a run() that never waits; code
  // running at this moment, and every later call until onShutdown, is stopped after
  // handler_timeout_ms or at drainDeadlineMs (Watchdog::nowMs clock), whichever is first.
  void markStop(uint64_t drainDeadlineMs);
  bool stopRequested() const { return stopRequested_.load(std::memory_order_relaxed); }

  // The loop this instance lives on; set before load().
  void setHost(Host* host) { host_ = host; }
  Host* host() const { return host_; }
  Role role() const { return role_; }
  const ServiceSettings& settings() const { return service_; }
  uint32_t index() const { return index_; }
  LuaDeadline* deadline() { return &deadline_; }

  // --- for the modules (lapps, mqr, nap, sockets) ------------------------------------
  // True if L is the coroutine this instance is running and may suspend (yield to us).
  bool canSuspend(lua_State* L) const { return L == runningCo_ && L != nullptr; }
  // Registers L (see canSuspend) as waiting; the caller then returns lua_yield(L, 0).
  // Returns the id to wake it with.
  uint64_t beginWait(lua_State* L);
  // Resumes the coroutine waiting under `id` with the values `push` leaves on its stack
  // (push returns their count). Deferred to the next loop turn when called while Lua runs
  // on this instance. Stale ids (the wait was cancelled, the state replaced) are ignored.
  void wake(uint64_t id, std::function<int(lua_State*)> push);
  // Drops a wait without resuming it (its coroutine is collected).
  void cancelWait(uint64_t id);
  // Bumped by every new Lua state: callbacks that outlive a state check it.
  uint64_t generation() const { return generation_; }
  // Runs fn(args...) in a new coroutine on the next loop turn; fn and its nargs arguments
  // are on top of L's stack (all popped).
  void spawn(lua_State* L, int nargs);
  // Runs the function held by registry reference `ref` (released) in a new coroutine now.
  void spawnRef(int ref);
  // Registers a callback to run (once) when the instance stops or is recycled; returns an
  // id for removeStopHook. Used by waits that hold external resources.
  uint64_t addStopHook(std::function<void()> fn);
  void removeStopHook(uint64_t id);

  // Resources: adopt() hands one over; drop() deletes it now (no-op if already gone).
  void adopt(InstanceResource* r) { resources_.insert(r); }
  bool owns(InstanceResource* r) const { return resources_.contains(r); }
  void drop(InstanceResource* r) {
    if (resources_.erase(r)) delete r;
  }
  // Calls the function at registry reference fnRef with the arguments `push` leaves on the
  // stack, protected and guarded (errors are logged and counted). Deferred to the next loop
  // turn when Lua is running on this instance; `alive` is checked then.
  void callRef(int fnRef, const char* what, std::function<int(lua_State*)> push,
               std::shared_ptr<bool> alive = nullptr);
  lua_State* state() const { return L_; }
  // LAppS protocol state of a connection of this instance (created on first use).
  LappsConnection& lappsConnection(uint64_t handle) { return lapps_[handle]; }

  // The connection of the batch being delivered (0: none): LAppS classify accepts only it.
  uint64_t batchHandle() const { return batch_ ? batch_->handle : 0; }
  // FFI side of the dispatcher: the next message to deliver, or 0 when there is none.
  int nextMessage(double* handle, const char** data, size_t* len);
  // FFI side of the dispatcher: onMessage returned false.
  void messageReturnedFalse();
  // What onConnect answered for `handle` (lua/connect.cc), now or after it waited.
  void connectAnswered(uint64_t handle, ConnectVerdict&& verdict);

  void log(LogLevel level, std::string message);
  // An error of the instance's own (onStart, onShutdown, timers, spawned coroutines,
  // init/run): logged, counted; max_failures within a minute and the instance is recycled.
  void failed(const std::string& where, const std::string& message);
  // An error one connection's message caused (its onMessage, a handler of it that had
  // suspended): logged, not counted; after kConnectionMaxErrors of them that connection is
  // closed with 1011.
  void connectionFailed(uint64_t handle, const std::string& where, const std::string& message);

 private:
  enum Entry {
    kOnStart,
    kOnMessage,
    kOnDisconnect,
    kOnShutdown,
    kInit,
    kRun,
    kOnConnect,
    kEntryCount
  };
  enum class Outcome : uint8_t { Finished, Suspended, Done, Failed, Stopped };
  // Whose error an entry point's failure is (see failed / connectionFailed).
  enum class Blame : uint8_t { Instance, Connection };

  std::string build();
  void destroyState(bool poisoned);
  // Protected call of the function below nargs arguments on the main stack. An error is
  // the instance's (counted) unless blame says otherwise. `conn`: the connection whose
  // batch is being delivered, if any (closed with 1011 if the watchdog stops the call).
  bool call(const char* what, int nargs, Blame blame = Blame::Instance, uint64_t conn = 0);
  // After Lua code ran into memory_limit: a full collection at once, and a fresh state if
  // the old one stays nearly full. Only between calls into Lua; `conn` as for call().
  void settleMemory(uint64_t conn = 0) {
    if (memory_.hitLimit) [[unlikely]]
      settleMemoryNow(conn);  // checked at every entry: inline
  }
  void settleMemoryNow(uint64_t conn);
  // Resumes co with nargs values on its stack. On Failed, err holds the message with its
  // traceback.
  Outcome resume(lua_State* co, int nargs, uint64_t conn, std::string& err);
  // The guarded part: jumps back here when the watchdog stops the code.
  int guardedResume(lua_State* co, int nargs, bool& stopped);
  int guardedPcall(int nargs, bool& stopped);
  // lua_close under the watchdog; false if it had to be stopped (the state is then to be
  // freed with memory_.freeAll()).
  bool guardedClose();
  bool closeUnderGuard(LuaGuardThread& g);
  void armDeadline();
  // When Lua code started at `now` must end once a standalone instance is asked to stop.
  uint64_t stopLimit(uint64_t now) const;
  void disarmDeadline();
  // After Outcome::Stopped: the state is unusable; report and replace it. `conn` (if not
  // 0) is the connection whose batch was being delivered: it is closed with 1011.
  void stoppedByWatchdog(const char* where, uint64_t conn = 0);
  void recycle(const std::string& why, bool poisoned);
  void rebuild();
  void dropWaitOf(lua_State* co);
  void scheduleRecycle(const std::string& why);
  // A parked connect coroutine resumed by wake(): settle its outcome.
  void afterConnectResume(Outcome o, lua_State* co, int coRef, const std::string& err);
  // A parked or finished coroutine resumed by wake(): settle its outcome.
  void afterResume(Outcome o, lua_State* co, int coRef, uint64_t conn, const std::string& err);
  std::string errorText(lua_State* L, int idx);
  lua_State* dispatcher();

  const ServiceSettings& service_;
  EventChannel& events_;
  Role role_;
  uint32_t index_;
  Host* host_ = nullptr;
  LuaMemory memory_;
  size_t idleUsed_ = 0;  // bytes in use after the last collection on idle
  LuaDeadline deadline_;
  lua_State* L_ = nullptr;
  uint64_t generation_ = 0;  // bumped by every new state: stale callbacks check it
  int entryRefs_[kEntryCount];
  int tracebackIndex_ = 0;
  int dispatcherFnRef_ = -1;        // the dispatcher function (registry)
  int connectFnRef_ = -1;           // the function of the connect coroutine (registry)
  lua_State* connectCo_ = nullptr;  // the connect coroutine ready for the next handshake
  int connectRef_ = -1;             // its registry reference
  // Connect coroutines parked with an onConnect that waits (each held by its wait).
  std::unordered_set<lua_State*> parkedConnect_;
  // onConnect: the handshake whose onConnect is running now (its answer is returned, not
  // sent), that answer, and the handshakes whose onConnect waits (answered later).
  uint64_t connectNow_ = 0;
  bool connectAnswered_ = false;
  ConnectVerdict connectVerdict_;
  std::unordered_set<uint64_t> connecting_;
  int dispatcherRef_ = -1;  // the current dispatcher coroutine (registry), -1 = none
  lua_State* dispatcherCo_ = nullptr;
  int baseTop_ = 0;
  MessageBatch* batch_ = nullptr;
  lua_State* runningCo_ = nullptr;  // the coroutine being resumed by us
  uint64_t runningConn_ = 0;        // its connection (0: none)
  bool suspended_ = false;          // beginWait was called during the current resume
  int depth_ = 0;                   // nesting of calls into Lua

  struct Wait {
    int coRef;
    uint64_t conn;
    lua_State* co;
  };
  std::unordered_map<uint64_t, Wait> waits_;
  std::unordered_map<lua_State*, uint64_t> coWait_;  // coroutine -> its wait
  uint64_t nextWaitId_ = 0;
  std::unordered_map<uint64_t, std::function<void()>> stopHooks_;
  std::unordered_set<InstanceResource*> resources_;
  std::unordered_map<uint64_t, LappsConnection> lapps_;  // LAppS protocol, by handle
  uint64_t nextHookId_ = 0;

  // Failure accounting: timestamps (ms) of recent failures.
  std::deque<uint64_t> failures_;
  // Handler errors per connection (only connections that had one).
  std::unordered_map<uint64_t, uint32_t> connectionErrors_;
  bool settling_ = false;  // inside settleMemory
  bool recycleScheduled_ = false;
  bool broken_ = false;
  bool loadStopped_ = false;  // build(): the watchdog stopped the file's top level    // the last
                              // rebuild failed: retried on a timer
  bool starting_ = false;     // inside onStart / init of a rebuilt state

  // Standalone.
  std::atomic<bool> stopRequested_{false};
  std::atomic<uint64_t> drainDeadlineMs_{0};  // markStop's; 0 once onShutdown runs
  bool runDone_ = false;
  bool stopHooksRan_ = false;
  int runRef_ = -1;
  lua_State* runCo_ = nullptr;
};

}  // namespace lapps
