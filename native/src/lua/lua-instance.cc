#include "lua/lua-instance.h"

#include <lua.hpp>

#include <algorithm>
#include <cstdio>
#include <string>

#include "core/service-host.h"
#include "embedded-lua.h"
#include "io/lua-thread.h"
#include "lua/api-bcast.h"
#include "lua/api-cbor.h"
#include "lua/api-json.h"
#include "lua/api-lapps.h"
#include "lua/api-net.h"
#include "lua/api-nljson.h"
#include "lua/api-ws.h"
#include "lua/connect.h"
#include "lua/coroutine-guard.h"
#include "lua/lapps-protocol.h"
#include "lua/luajit-frames.h"
#include "lua/sandbox.h"

namespace lapps {

namespace {

const char* const kEntryNames[] = {"onStart", "onMessage", "onDisconnect", "onShutdown",
                                   "init",    "run",       "onConnect"};

// What the dispatcher coroutine yields when its batch is done (as opposed to a handler
// suspending inside it).
char kBatchDone;

constexpr uint64_t kFailureWindowMs = 60000;
constexpr uint64_t kRebuildRetryMs = 1000;
// Error messages longer than this are cut in the log.
constexpr size_t kMaxErrorText = 16384;
// Lua code that went this deep into the C stack leaves its pages to be trimmed.
constexpr uintptr_t kDeepStack = uintptr_t(8) << 20;
// Handler errors a connection's messages may cause before it is closed with 1011.
constexpr uint32_t kConnectionMaxErrors = 3;

// lapps's own use of a state between calls into Lua (new coroutines, pushed values, error
// text) must not run a step of the garbage collector: the step could run a __gc finalizer
// of the service there, outside any protected and timed call, and LuaJIT 2.1-20230119
// rethrows a finalizer's error, which there would end the process. The collector is
// stopped around such code; if it was running, it goes on with a step at the next
// allocation (which happens inside Lua).
class GcPause {
 public:
  explicit GcPause(lua_State* L) : L_(L), running_(lua_gc(L, LUA_GCISRUNNING, 0) != 0) {
    if (running_) lua_gc(L_, LUA_GCSTOP, 0);
  }
  ~GcPause() {
    if (running_) lua_gc(L_, LUA_GCRESTART, 0);
  }
  GcPause(const GcPause&) = delete;
  GcPause& operator=(const GcPause&) = delete;

 private:
  lua_State* L_;
  bool running_;
};

// lua_CFunction for LuaInstance::settleMemory: a full cycle, and a collector the service
// stopped (collectgarbage("stop")) runs again. Compiled traces go first: a trace keeps the
// objects it was specialised on alive (the closures and coroutines of a deep
// coroutine.wrap chain, say), so the memory a failed handler built could not be freed.
int fullCollection(lua_State* L) {
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_FLUSH);
  lua_gc(L, LUA_GCCOLLECT, 0);
  if (!lua_gc(L, LUA_GCISRUNNING, 0)) lua_gc(L, LUA_GCRESTART, 0);
  return 0;
}

// Message handler for lua_pcall: appends the traceback to the error.
int traceback(lua_State* L) {
  const char* msg = lua_tostring(L, 1);
  if (!msg) {
    msg = luaL_typename(L, 1);
    lua_pushfstring(L, "(error object is a %s value)", msg);
    msg = lua_tostring(L, -1);
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

// print(...) goes to the server log, tagged with the instance name.
int luaPrint(lua_State* L) {
  auto* self = static_cast<LuaInstance*>(lua_touserdata(L, lua_upvalueindex(1)));
  int n = lua_gettop(L);
  std::string line;
  lua_getglobal(L, "tostring");
  for (int i = 1; i <= n; ++i) {
    lua_pushvalue(L, -1);
    lua_pushvalue(L, i);
    lua_call(L, 1, 1);
    size_t len;
    const char* s = lua_tolstring(L, -1, &len);
    if (!s) return luaL_error(L, "'tostring' must return a string to 'print'");
    if (i > 1) line.push_back('\t');
    line.append(s, len);
    lua_pop(L, 1);
  }
  self->log(LogLevel::Info, std::move(line));
  return 0;
}

// must_stop() in standalone services.
int luaMustStop(lua_State* L) {
  auto* self = static_cast<LuaInstance*>(lua_touserdata(L, lua_upvalueindex(1)));
  lua_pushboolean(L, self->stopRequested());
  return 1;
}

// os.exit would take the whole server down with one service.
int luaNoExit(lua_State* L) {
  return luaL_error(L, "os.exit is not available in lapps services (it would stop the server)");
}

}  // namespace

extern "C" {
__attribute__((visibility("default"))) int lapps_next_message(void* instance, double* handle,
                                                              const char** data, size_t* len) {
  return static_cast<LuaInstance*>(instance)->nextMessage(handle, data, len);
}
__attribute__((visibility("default"))) void lapps_message_returned_false(void* instance) {
  static_cast<LuaInstance*>(instance)->messageReturnedFalse();
}
}

LuaInstance::LuaInstance(const ServiceSettings& service, uint32_t index, EventChannel& events,
                         Role role)
    : ServiceInstance(service.name + "#" + std::to_string(index), service.index),
      service_(service),
      events_(events),
      role_(role),
      index_(index),
      memory_(service.memoryLimit) {
  for (int& r : entryRefs_) r = LUA_NOREF;
  deadline_.limitMs = service.handlerTimeoutMs;
}

LuaInstance::~LuaInstance() {
  destroyState(false);
}

void LuaInstance::log(LogLevel level, std::string message) {
  events_.log(level, "service " + name(), std::move(message));
}

std::string LuaInstance::load() {
  // The service file's top level is Lua code like any other: it runs on a thread with a C
  // stack sized for Lua (io/lua-thread.h), not on the caller's.
  std::string err;
  LuaThread loader;
  loader.start("lapps-load", [&] {
    err = build();
    if (!err.empty()) destroyState(loadStopped_);
  });
  loader.join();
  memory_.deepestSp = UINTPTR_MAX;  // an address on the loader's stack, not the host's
  return err;
}

void LuaInstance::destroyState(bool poisoned) {
  // Resources first: a client socket must leave its host loop before anything else goes.
  auto resources = std::move(resources_);
  resources_.clear();
  for (InstanceResource* r : resources) delete r;
  if (L_) {
    // Stopped mid-flight, closing would run into the inconsistent state: every byte it
    // owned is in the arena.
    if (poisoned || !guardedClose()) memory_.freeAll();
  }
  memory_.trim();
  L_ = nullptr;
  ++generation_;
  waits_.clear();
  coWait_.clear();
  lapps_.clear();
  connectionErrors_.clear();
  connectFnRef_ = -1;
  connectCo_ = nullptr;
  connectRef_ = -1;
  parkedConnect_.clear();
  // Handshakes whose onConnect was waiting in the old state: nobody will answer them.
  auto connecting = std::move(connecting_);
  connecting_.clear();
  if (ServiceHost* h = serviceHost()) {
    for (uint64_t handle : connecting) {
      h->answerConnect(service(), handle,
                       ConnectVerdict::refuse(503, "the service restarted; try again"));
    }
  }
  auto hooks = std::move(stopHooks_);
  stopHooks_.clear();
  for (auto& [id, fn] : hooks) fn();
  dispatcherCo_ = nullptr;
  dispatcherRef_ = -1;
  runningCo_ = nullptr;
  for (int& r : entryRefs_) r = LUA_NOREF;
  runRef_ = -1;
  runCo_ = nullptr;
}

std::string LuaInstance::build() {
  learnLuaJitFrames();  // before any state can reach its memory limit
  loadStopped_ = false;
  ++generation_;
  L_ = lua_newstate(LuaMemory::alloc, &memory_);
  if (!L_) return "cannot create a Lua state (out of memory)";
  // Every call into Lua is protected; should one ever not be, say why before LuaJIT exits.
  lua_atpanic(L_, [](lua_State* L) -> int {
    const char* msg = lua_tostring(L, -1);
    std::fprintf(stderr, "lapps: unprotected Lua error (a bug in lapps): %s\n",
                 msg ? msg : "(not a string)");
    return 0;
  });
  const bool reactive = role_ == Role::Reactive;

  // Everything that may allocate runs protected: even running out of memory here is a
  // clean error.
  lua_CFunction setup = [](lua_State* L) -> int {
    auto* self = static_cast<LuaInstance*>(lua_touserdata(L, 1));
    luaL_openlibs(L);
    guardCoroutines(L);
    // The service's directory is on the module path, so helper modules load with require.
    const std::string& source = self->settings().source;
    std::string dir = source.substr(0, source.find_last_of('/') + 1);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    std::string path = dir + "?.lua;" + dir + "?/init.lua;" + lua_tostring(L, -1);
    lua_pop(L, 1);
    lua_pushlstring(L, path.data(), path.size());
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);

    lua_pushlightuserdata(L, self);
    lua_pushcclosure(L, luaPrint, 1);
    lua_setglobal(L, "print");
    lua_getglobal(L, "os");
    lua_pushcfunction(L, luaNoExit);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);

    // Every area of the API hangs off the `lapps` root table; the LAppS names (ws, bcast,
    // nljson) are globals too, as LAppS services expect.
    registerLappsProtocol(L, self);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "lapps");
    if (self->role() == Role::Reactive) {
      registerWsApi(L, self);
      lua_getglobal(L, "ws");
      lua_setfield(L, -2, "ws");
    } else {
      lua_pushlightuserdata(L, self);
      lua_pushcclosure(L, luaMustStop, 1);
      lua_setglobal(L, "must_stop");
      std::string id = self->name();
      lua_pushlstring(L, id.data(), id.size());
      lua_setglobal(L, "instance_id");
    }
    pushBcastApi(L, self);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "bcast");
    lua_setfield(L, -2, "bcast");
    // Value codecs: lapps.cbor / lapps.json / lapps.nljson, require("cbor") etc.
    const struct {
      const char* name;
      lua_CFunction open;
    } codecs[] = {{"cbor", openCbor}, {"json", openJson}, {"nljson", openNljson}};
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    for (const auto& codec : codecs) {
      lua_pushcfunction(L, codec.open);
      lua_call(L, 0, 1);
      lua_pushvalue(L, -1);
      lua_setfield(L, -3, codec.name);  // package.loaded
      lua_setfield(L, -4, codec.name);  // lapps root
    }
    lua_pop(L, 2);
    lua_getfield(L, -1, "nljson");
    lua_setglobal(L, "nljson");
    // The coroutine runtime (lapps.sleep, timers, sockets) and the preloadable modules
    // (mqr, nap, time, murmur, cws, pam_auth) in package.preload.
    registerLappsApi(L, self);
    registerNetApi(L, self);
    lua_pop(L, 1);  // lapps root

    // The dispatcher takes ffi from here: the sandbox removes it from the service's reach.
    lua_getglobal(L, "require");
    lua_pushliteral(L, "ffi");
    lua_call(L, 1, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "lapps.ffi");
    if (self->settings().sandbox) applySandbox(L);
    // Modules listed in `preload` become globals before the service runs (LAppS); the
    // sandbox applies to them too.
    for (const std::string& mod : self->settings().preload) {
      lua_getglobal(L, "require");
      lua_pushlstring(L, mod.data(), mod.size());
      lua_call(L, 1, 1);
      lua_setglobal(L, mod.c_str());
    }
    return 0;
  };
  memory_.enforce = true;
  int setupRc = lua_cpcall(L_, setup, this);
  memory_.enforce = false;
  if (setupRc != 0) {
    std::string err = errorText(L_, -1);
    return "cannot set up the Lua modules: " + err;
  }

  lua_pushcfunction(L_, traceback);
  tracebackIndex_ = lua_gettop(L_);  // stays at the bottom of the stack for every call

  if (luaL_loadfile(L_, service_.source.c_str()) != 0) return errorText(L_, -1);
  // Like LAppS: the module's returned table becomes the global named after the service.
  // The top level is service code too: timed like a handler, so a file that loops fails
  // to load (naming the limit) instead of hanging the start or a rebuild.
  memory_.enforce = true;
  deadline_.thread = pthread_self();
  const uint32_t t = service_.handlerTimeoutMs;
  deadline_.deadlineMs.store(t ? Watchdog::nowMs() + t : kInLuaNoDeadline,
                             std::memory_order_relaxed);
  bool stopped = false;
  int loadRc = guardedPcall(0, stopped);
  deadline_.deadlineMs.store(0, std::memory_order_relaxed);
  memory_.enforce = false;
  if (stopped) {
    loadStopped_ = true;  // the state is unusable: freed wholesale
    return service_.source + ": its top level ran for more than " + std::to_string(t) +
           " ms (handler_timeout_ms) and was stopped";
  }
  if (loadRc != 0) return errorText(L_, -1);
  if (lua_isnil(L_, -1)) {
    lua_pop(L_, 1);
    lua_getglobal(L_, service_.name.c_str());
  }
  if (!lua_istable(L_, -1)) {
    return service_.source + ": the service must return a table (or set the global '" +
           service_.name + "')";
  }
  lua_pushvalue(L_, -1);
  lua_setglobal(L_, service_.name.c_str());
  for (int e = 0; e < kEntryCount; ++e) {
    const bool required = reactive ? e <= kOnShutdown : (e == kInit || e == kRun);
    const bool optional = reactive ? e == kOnConnect : e == kOnShutdown;
    if (!required && !optional) continue;
    lua_getfield(L_, -1, kEntryNames[e]);
    if (!lua_isfunction(L_, -1)) {
      if (optional && lua_isnil(L_, -1)) {
        lua_pop(L_, 1);
        continue;
      }
      return service_.source + ": the service table has no function '" + kEntryNames[e] + "'";
    }
    entryRefs_[e] = luaL_ref(L_, LUA_REGISTRYINDEX);
  }
  lua_pop(L_, 1);
  if (reactive) {
    if (embedded::kDispatch.load(L_) != 0) {
      return "cannot load the message dispatcher: " + errorText(L_, -1);
    }
    lua_rawgeti(L_, LUA_REGISTRYINDEX, entryRefs_[kOnMessage]);
    lua_pushlightuserdata(L_, reinterpret_cast<void*>(&lapps_next_message));
    lua_pushlightuserdata(L_, reinterpret_cast<void*>(&lapps_message_returned_false));
    lua_pushlightuserdata(L_, this);
    lua_pushlightuserdata(L_, &kBatchDone);
    lua_getfield(L_, LUA_REGISTRYINDEX, "lapps.ffi");
    lua_getfield(L_, LUA_REGISTRYINDEX, "lapps.protocol.classify");
    lua_getfield(L_, LUA_REGISTRYINDEX, "lapps.protocol.text");
    lua_pushboolean(L_, service_.protocol == Protocol::Lapps);  // which loop
    if (lua_pcall(L_, 9, 1, tracebackIndex_) != 0) {
      return "cannot set up the message dispatcher: " + errorText(L_, -1);
    }
    dispatcherFnRef_ = luaL_ref(L_, LUA_REGISTRYINDEX);
    setWantsConnect(entryRefs_[kOnConnect] != LUA_NOREF);
    if (entryRefs_[kOnConnect] != LUA_NOREF) {
      lua_pushcfunction(L_, [](lua_State* L) -> int {
        pushConnectWrapper(L, static_cast<LuaInstance*>(lua_touserdata(L, 1)), 2, &kBatchDone);
        return 1;
      });
      lua_pushlightuserdata(L_, this);
      lua_pushvalue(L_, tracebackIndex_);
      if (lua_pcall(L_, 2, 1, tracebackIndex_) != 0) {
        return "cannot set up onConnect: " + errorText(L_, -1);
      }
      connectFnRef_ = luaL_ref(L_, LUA_REGISTRYINDEX);
    }
  }
  baseTop_ = lua_gettop(L_);
  return {};
}

std::string LuaInstance::errorText(lua_State* L, int idx) {
  // Read without converting anything: lua_tolstring would turn a number into a string (an
  // allocation, a possible collector step) in place.
  std::string out;
  if (lua_gettop(L) == 0) {
    out = "(no error object)";
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    size_t len;
    const char* s = lua_tolstring(L, idx, &len);
    out.assign(s, std::min(len, kMaxErrorText));
    if (len > kMaxErrorText) out += "... (" + std::to_string(len) + " bytes)";
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.14g", lua_tonumber(L, idx));
    out = buf;
  } else {
    out = std::string("(error object is a ") + luaL_typename(L, idx) + " value)";
  }
  if (lua_gettop(L) > 0) lua_pop(L, 1);
  if (memory_.hitLimit) {
    out = "memory limit reached (" + std::to_string(memory_.limit()) +
          " bytes, memory_limit): " + out;
  }
  return out;
}

// --- entering Lua ----------------------------------------------------------------------

void LuaInstance::armDeadline() {
  if (depth_++ != 0) return;
  memory_.hitLimit = false;  // an earlier refusal was caught by the service itself
  memory_.enforce = true;
  deadline_.thread = pthread_self();
  uint32_t t = service_.handlerTimeoutMs;
  uint64_t limit = kInLuaNoDeadline;
  if (role_ == Role::Reactive) {
    if (t) limit = Watchdog::nowMs() + t;
  } else if (stopRequested()) {
    // A standalone run() may compute for as long as it likes until it is asked to stop.
    limit = stopLimit(Watchdog::nowMs());
  }
  deadline_.deadlineMs.store(limit, std::memory_order_relaxed);
}

uint64_t LuaInstance::stopLimit(uint64_t now) const {
  uint64_t limit = kInLuaNoDeadline;
  if (service_.handlerTimeoutMs) limit = now + service_.handlerTimeoutMs;
  const uint64_t drain = drainDeadlineMs_.load(std::memory_order_relaxed);
  return drain ? std::min(limit, drain) : limit;
}

void LuaInstance::disarmDeadline() {
  if (--depth_ == 0) {
    deadline_.deadlineMs.store(0, std::memory_order_relaxed);
    memory_.enforce = false;
    // After a deep recursion (the allocator saw how deep), the stack pages it touched go
    // back to the system.
    const auto sp = uintptr_t(__builtin_frame_address(0));
    if (sp > memory_.deepestSp && sp - memory_.deepestSp > kDeepStack) {
      trimLuaStack();
      memory_.deepestSp = UINTPTR_MAX;
    }
  }
}

int LuaInstance::guardedPcall(int nargs, bool& stopped) {
  LuaGuardThread& g = luaGuardThread();
  const bool outer = g.depth++ == 0;
  if (outer) {
    if (sigsetjmp(g.jmp, 0) != 0) {
      stopped = true;
      return -1;
    }
    g.armed = 1;
  }
  int rc = lua_pcall(L_, nargs, 1, tracebackIndex_);
  if (--g.depth == 0) g.armed = 0;
  return rc;
}

bool LuaInstance::guardedClose() {
  // lua_close runs the service's pending __gc finalizers: Lua code, timed and limited like
  // any other. One that has to be stopped leaves the state to be freed wholesale.
  LuaGuardThread& g = luaGuardThread();
  if (g.depth != 0) {
    lua_close(L_);  // inside another instance's call: its guard covers this too
    return true;
  }
  memory_.enforce = true;
  deadline_.thread = pthread_self();
  const uint32_t t = service_.handlerTimeoutMs;
  deadline_.deadlineMs.store(t ? Watchdog::nowMs() + t : kInLuaNoDeadline,
                             std::memory_order_relaxed);
  bool closed = closeUnderGuard(g);
  g.armed = 0;
  g.depth = 0;
  deadline_.deadlineMs.store(0, std::memory_order_relaxed);
  memory_.enforce = false;
  return closed;
}

bool LuaInstance::closeUnderGuard(LuaGuardThread& g) {
  g.depth = 1;
  if (sigsetjmp(g.jmp, 0) != 0) return false;
  g.armed = 1;
  lua_close(L_);
  return true;
}

int LuaInstance::guardedResume(lua_State* co, int nargs, bool& stopped) {
  LuaGuardThread& g = luaGuardThread();
  const bool outer = g.depth++ == 0;
  if (outer) {
    if (sigsetjmp(g.jmp, 0) != 0) {
      stopped = true;
      return -1;
    }
    g.armed = 1;
  }
  int rc = lua_resume(co, nargs);
  if (--g.depth == 0) g.armed = 0;
  return rc;
}

bool LuaInstance::call(const char* what, int nargs, Blame blame, uint64_t conn) {
  // Stack: traceback, ..., fn, args...
  bool stopped = false;
  armDeadline();
  int rc = guardedPcall(nargs, stopped);
  if (stopped) {
    depth_ = 0;
    memory_.enforce = false;
    deadline_.deadlineMs.store(0, std::memory_order_relaxed);
    stoppedByWatchdog(what, conn);
    return false;
  }
  disarmDeadline();
  std::string err;
  if (rc != 0) {
    err = errorText(L_, -1);
  } else if (!lua_toboolean(L_, -1) && lua_type(L_, -1) == LUA_TBOOLEAN) {
    // Only an explicit `false` counts as failure; nil (no return value) is success.
    err = "returned false";
  }
  lua_settop(L_, baseTop_);
  if (!err.empty()) {
    if (blame == Blame::Connection) {
      log(LogLevel::Error, std::string(what) + ": " + err);
    } else {
      failed(what, err);
    }
  }
  settleMemory(conn);
  return err.empty() && L_;
}

LuaInstance::Outcome LuaInstance::resume(lua_State* co, int nargs, uint64_t conn,
                                         std::string& err) {
  lua_State* prevCo = runningCo_;
  uint64_t prevConn = runningConn_;
  bool prevSuspended = suspended_;
  runningCo_ = co;
  runningConn_ = conn;
  suspended_ = false;
  bool stopped = false;
  armDeadline();
  int rc = guardedResume(co, nargs, stopped);
  if (stopped) {
    depth_ = 0;
    memory_.enforce = false;
    deadline_.deadlineMs.store(0, std::memory_order_relaxed);
    runningCo_ = nullptr;
    runningConn_ = 0;
    suspended_ = false;
    return Outcome::Stopped;
  }
  disarmDeadline();
  bool suspended = suspended_;
  runningCo_ = prevCo;
  runningConn_ = prevConn;
  suspended_ = prevSuspended;
  if (rc == LUA_YIELD) {
    bool done = lua_gettop(co) > 0 && lua_touserdata(co, -1) == &kBatchDone;
    if (!done && suspended && coWait_.contains(co)) return Outcome::Suspended;
    // A wait begun but never entered (its yield failed inside a pcall that caught the
    // error) must not resume this coroutine later.
    dropWaitOf(co);
    lua_settop(co, 0);
    if (done) return Outcome::Done;
    err =
        "coroutine.yield() in a handler's own coroutine (suspend with lapps.sleep, mqr, "
        "sockets; use coroutine.wrap for generators)";
    return Outcome::Failed;
  }
  dropWaitOf(co);
  if (rc == 0) {
    lua_settop(co, 0);
    return Outcome::Finished;
  }
  GcPause pause(L_);
  std::string msg = errorText(co, -1);
  luaL_traceback(L_, co, msg.c_str(), 0);
  err = lua_tostring(L_, -1);
  lua_pop(L_, 1);
  return Outcome::Failed;
}

// --- failures and recycling ------------------------------------------------------------

void LuaInstance::failed(const std::string& where, const std::string& message) {
  log(LogLevel::Error, where + ": " + message);
  uint64_t now = Watchdog::nowMs();
  failures_.push_back(now);
  while (!failures_.empty() && now - failures_.front() > kFailureWindowMs) failures_.pop_front();
  if (service_.maxFailures && failures_.size() >= service_.maxFailures) {
    scheduleRecycle(std::to_string(failures_.size()) + " errors within a minute (max_failures " +
                    std::to_string(service_.maxFailures) + ")");
  }
}

void LuaInstance::connectionFailed(uint64_t handle, const std::string& where,
                                   const std::string& message) {
  // Not counted towards max_failures: one client must not be able to recycle an instance
  // that serves others. Its own connection goes after a few.
  uint32_t& n = connectionErrors_[handle];
  ++n;
  log(LogLevel::Error, where + ": " + message);
  if (n < kConnectionMaxErrors) return;
  log(LogLevel::Warn, "closing connection " + std::to_string(handle) +
                          " with 1011: " + std::to_string(n) + " handler errors");
  if (ServiceHost* h = serviceHost()) h->fail(handle);
}

void LuaInstance::settleMemoryNow(uint64_t conn) {
  if (settling_ || depth_ > 0 || batch_ || !L_) return;
  // Code ran into memory_limit (whether or not its error was caught): the garbage it left
  // goes now, so that the next message finds the memory free; a state that stays nearly
  // full (the service keeps what it allocated) is replaced at once instead of failing
  // every message from now on.
  memory_.hitLimit = false;
  settling_ = true;
  memory_.headroom = memory_.limit() / 8;
  lua_pushcfunction(L_, fullCollection);
  call("garbage collection after memory_limit", 0, Blame::Instance, conn);
  memory_.headroom = 0;
  settling_ = false;
  if (!L_) return;  // a __gc finalizer was stopped by the watchdog: recycled
  memory_.hitLimit = false;
  const size_t used = memory_.used(), limit = memory_.limit();
  if (used > limit / 4 * 3 && !stopRequested()) {
    recycle(std::to_string(used) + " bytes still in use after a full garbage collection " +
                "(more than 3/4 of memory_limit, " + std::to_string(limit) + " bytes)",
            false);
  }
}

void LuaInstance::scheduleRecycle(const std::string& why) {
  if (recycleScheduled_ || !host_) return;
  recycleScheduled_ = true;
  uint64_t gen = generation_;
  host_->addTimer(0, [this, gen, why] {
    recycleScheduled_ = false;
    if (gen == generation_) recycle(why, false);
  });
}

void LuaInstance::stoppedByWatchdog(const char* where, uint64_t conn) {
  const uint64_t drain = drainDeadlineMs_.load(std::memory_order_relaxed);
  if (drain && Watchdog::nowMs() >= drain) {
    log(LogLevel::Error, std::string(where) +
                             ": still running when the drain timeout ended "
                             "(limits.drain_timeout_ms): stopped");
  } else {
    log(LogLevel::Error, std::string(where) + ": stopped after running for more than " +
                             std::to_string(service_.handlerTimeoutMs) +
                             " ms (handler_timeout_ms)");
  }
  if (ServiceHost* h = serviceHost(); h && conn) h->fail(conn);
  if (role_ == Role::Standalone) {
    // A standalone service that had to be stopped is over: it ignored must_stop(), or
    // (with handler_timeout_ms) looped after being asked to stop.
    destroyState(true);
    runDone_ = true;
    return;
  }
  recycle("a handler was stopped by the watchdog", true);
}

void LuaInstance::recycle(const std::string& why, bool poisoned) {
  log(LogLevel::Error, "restarting the instance with a fresh Lua state: " + why);
  failures_.clear();
  if (ServiceHost* h = serviceHost()) {
    // The state that knew these connections is gone: their clients should reconnect.
    h->closeConnectionsOf(this, 1011, "service restarted");
  }
  destroyState(poisoned);
  // The fresh state failed while starting (onStart or init ran away, or kept failing):
  // wait a second before building again, so the worker serves everyone else meanwhile.
  if (starting_) {
    broken_ = true;
    log(LogLevel::Error, "the instance failed while starting: rebuilding in 1 s");
    uint64_t gen = generation_;
    host_->addTimer(kRebuildRetryMs, [this, gen] {
      if (gen == generation_ && broken_) rebuild();
    });
    return;
  }
  rebuild();
}

void LuaInstance::rebuild() {
  std::string err = build();
  if (!err.empty()) {
    destroyState(loadStopped_);
    broken_ = true;
    log(LogLevel::Error, "cannot rebuild the instance (retrying in 1 s): " + err);
    uint64_t gen = generation_;
    host_->addTimer(kRebuildRetryMs, [this, gen] {
      if (gen == generation_ && broken_) rebuild();
    });
    return;
  }
  broken_ = false;
  starting_ = true;
  if (role_ == Role::Reactive) {
    onStart();
    starting_ = false;
  } else if (!stopRequested()) {
    // A standalone instance starts over: init(), then run().
    runDone_ = false;
    bool ok = runInit();
    starting_ = false;
    if (ok) {
      startRun();
    } else {
      runDone_ = true;
    }
  } else {
    starting_ = false;
    runDone_ = true;
  }
}

// --- reactive entry points -------------------------------------------------------------

void LuaInstance::onStart() {
  if (!L_) return;
  lua_rawgeti(L_, LUA_REGISTRYINDEX, entryRefs_[kOnStart]);
  call("onStart", 0);
}

lua_State* LuaInstance::dispatcher() {
  if (!dispatcherCo_) {
    GcPause pause(L_);
    dispatcherCo_ = lua_newthread(L_);
    dispatcherRef_ = luaL_ref(L_, LUA_REGISTRYINDEX);
    lua_rawgeti(dispatcherCo_, LUA_REGISTRYINDEX, dispatcherFnRef_);
  }
  return dispatcherCo_;
}

ConnectVerdict LuaInstance::onConnect(uint64_t handle, const ConnectRequest& request) {
  if (!L_) return ConnectVerdict::refuse(503, "the service is restarting; try again");
  if (entryRefs_[kOnConnect] == LUA_NOREF || connectFnRef_ < 0) return {};
  lua_State* co = connectCo_;
  if (!co) {
    GcPause pause(L_);
    co = lua_newthread(L_);
    connectRef_ = luaL_ref(L_, LUA_REGISTRYINDEX);
    connectCo_ = co;
    lua_rawgeti(co, LUA_REGISTRYINDEX, connectFnRef_);
  }
  // Nothing here allocates (a coroutine has room for these on its stack), so no pause of
  // the collector either: a pause ends with a forced step at the next allocation, which
  // per handshake would cost more than the rest of onConnect. The request becomes Lua
  // values inside the resume (connect.lua's unpack).
  lua_rawgeti(co, LUA_REGISTRYINDEX, entryRefs_[kOnConnect]);
  lua_pushnumber(co, lua_Number(handle));
  lua_pushlightuserdata(co, const_cast<ConnectRequest*>(&request));
  const int nargs = 3;
  connectNow_ = handle;
  connectAnswered_ = false;
  std::string err;
  Outcome o = resume(co, nargs, 0, err);
  connectNow_ = 0;
  ConnectVerdict v;
  switch (o) {
    case Outcome::Done:
      // Answered, and the coroutine waits for the next handshake.
      v = connectAnswered_ ? std::move(connectVerdict_)
                           : ConnectVerdict::refuse(500, "internal error");
      break;
    case Outcome::Suspended:
      // onConnect waits inside this coroutine: the wait holds it (with its own reference)
      // and the next handshake gets a new one.
      parkedConnect_.insert(co);
      connecting_.insert(handle);
      luaL_unref(L_, LUA_REGISTRYINDEX, connectRef_);
      connectCo_ = nullptr;
      connectRef_ = -1;
      v = ConnectVerdict::pending();
      break;
    case Outcome::Stopped:
      stoppedByWatchdog("onConnect");  // a fresh state: its coroutine is gone with the old one
      v = ConnectVerdict::refuse(500, "internal error");
      break;
    case Outcome::Finished:
    case Outcome::Failed:
      // Only what onConnect cannot catch gets here (a bare coroutine.yield): the coroutine
      // is not reused.
      log(LogLevel::Error, "onConnect: " + (err.empty() ? std::string("no answer") : err));
      luaL_unref(L_, LUA_REGISTRYINDEX, connectRef_);
      connectCo_ = nullptr;
      connectRef_ = -1;
      v = ConnectVerdict::refuse(500, "internal error");
      break;
  }
  settleMemory();
  return v;
}

void LuaInstance::afterConnectResume(Outcome o, lua_State* co, int coRef, const std::string& err) {
  switch (o) {
    case Outcome::Suspended:
      luaL_unref(L_, LUA_REGISTRYINDEX, coRef);  // waits again: the new wait holds it
      return;
    case Outcome::Done:
      // Answered after its wait: the coroutine can serve the next handshakes.
      parkedConnect_.erase(co);
      if (!connectCo_) {
        connectCo_ = co;
        connectRef_ = coRef;
      } else {
        luaL_unref(L_, LUA_REGISTRYINDEX, coRef);
      }
      return;
    case Outcome::Finished:
    case Outcome::Failed:
      parkedConnect_.erase(co);
      luaL_unref(L_, LUA_REGISTRYINDEX, coRef);
      log(LogLevel::Error,
          "onConnect (resumed): " + (err.empty() ? std::string("no answer") : err));
      return;
    case Outcome::Stopped:
      parkedConnect_.erase(co);
      stoppedByWatchdog("onConnect (resumed)");
      return;
  }
}

void LuaInstance::connectAnswered(uint64_t handle, ConnectVerdict&& verdict) {
  if (handle == connectNow_) {
    connectVerdict_ = std::move(verdict);
    connectAnswered_ = true;
    return;
  }
  // After a wait: unless that handshake was answered already (the state was replaced).
  if (!connecting_.erase(handle)) return;
  if (ServiceHost* h = serviceHost()) h->answerConnect(service(), handle, std::move(verdict));
}

void LuaInstance::onMessages(MessageBatch& batch) {
  for (;;) {
    if (!L_) {
      // Between a failed rebuild and its retry: nobody can serve this connection.
      serviceHost()->fail(batch.handle);
      return;
    }
    batch_ = &batch;
    lua_State* co = dispatcher();
    std::string err;
    Outcome o = resume(co, 0, batch.handle, err);
    batch_ = nullptr;
    switch (o) {
      case Outcome::Done:
        settleMemory(batch.handle);
        return;
      case Outcome::Suspended:
        // onMessage waits inside this coroutine; the next batch gets a new dispatcher. The
        // wait holds its own reference to the coroutine.
        luaL_unref(L_, LUA_REGISTRYINDEX, dispatcherRef_);
        dispatcherCo_ = nullptr;
        dispatcherRef_ = -1;
        serviceHost()->hold(batch.handle);
        settleMemory(batch.handle);
        return;
      case Outcome::Failed:
      case Outcome::Finished:
        // The failed message was the last one taken: its connection pays, nobody else. It
        // goes on with its next message (a fresh dispatcher) until it has failed too often.
        luaL_unref(L_, LUA_REGISTRYINDEX, dispatcherRef_);
        dispatcherCo_ = nullptr;
        dispatcherRef_ = -1;
        connectionFailed(batch.handle, "onMessage", err);
        settleMemory(batch.handle);
        if (batch.next == batch.count || !batch.open()) return;
        continue;
      case Outcome::Stopped:
        stoppedByWatchdog("onMessage", batch.handle);
        return;
    }
  }
}

int LuaInstance::nextMessage(double* handle, const char** data, size_t* len) {
  if (!batch_) return 0;  // a resumed handler finished: its dispatcher has no batch
  MessageBatch& b = *batch_;
  // The slice check last: it counts the message as handed over.
  if (b.next == b.count || !b.open() || !serviceHost()->sliceGoesOn()) return 0;
  const InboundMessage& m = b.items[b.next++];
  // handler_timeout_ms is for this call: the ones before it in the batch are done.
  deadline_.nextCall();
  *handle = double(b.handle);
  *data = reinterpret_cast<const char*>(m.data);
  *len = m.len;
  return m.opcode;
}

void LuaInstance::messageReturnedFalse() {
  log(LogLevel::Warn, "onMessage returned false");
  // The connection of the handler that returned (a batch's, or a resumed one's).
  if (runningConn_) serviceHost()->fail(runningConn_);
}

void LuaInstance::onDisconnect(uint64_t handle) {
  lapps_.erase(handle);
  connectionErrors_.erase(handle);
  if (!L_) return;
  lua_rawgeti(L_, LUA_REGISTRYINDEX, entryRefs_[kOnDisconnect]);
  lua_pushnumber(L_, lua_Number(handle));
  // A client decides when its connection ends: an error here must not count towards
  // recycling the instance either.
  call("onDisconnect", 1, Blame::Connection);
}

void LuaInstance::onShutdown() {
  requestStop();
  connecting_.clear();  // the worker refused every handshake still waiting (503)
  // The drain is over: onShutdown gets handler_timeout_ms like any entry point.
  drainDeadlineMs_.store(0, std::memory_order_relaxed);
  if (L_ && entryRefs_[kOnShutdown] != LUA_NOREF) {
    lua_rawgeti(L_, LUA_REGISTRYINDEX, entryRefs_[kOnShutdown]);
    call("onShutdown", 0);
  }
  // The loop is about to end: outbound sockets go now, so their peers see them close
  // instead of waiting for a loop that no longer runs.
  auto resources = std::move(resources_);
  resources_.clear();
  for (InstanceResource* r : resources) delete r;
}

size_t LuaInstance::onIdle() {
  // A burst's garbage (its messages, as Lua strings) stays until an allocation steps the
  // collector, which an idle state never does. Collect once the state has grown by a
  // meaningful amount since the last time, so a quiet tick costs nothing otherwise.
  constexpr size_t kGrowth = 1 << 20;
  const size_t before = memory_.used();
  if (!L_ || before < idleUsed_ + kGrowth) return 0;
  auto collect = [](lua_State* L) -> int {
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
  };
  // The collection runs the service's __gc finalizers: Lua code, protected and timed like
  // every entry point (a finalizer that loops is stopped, not left to freeze the worker).
  lua_pushcfunction(L_, collect);
  call("garbage collection when idle", 0);
  if (!L_) return 0;  // stopped by the watchdog: the instance got a fresh state
  memory_.trim();
  idleUsed_ = memory_.used();
  return before > idleUsed_ ? before - idleUsed_ : 0;
}

// --- standalone entry points -----------------------------------------------------------

bool LuaInstance::runInit() {
  if (!L_) return false;
  lua_rawgeti(L_, LUA_REGISTRYINDEX, entryRefs_[kInit]);
  return call("init", 0) && L_;
}

void LuaInstance::startRun() {
  if (!L_) {
    runDone_ = true;
    return;
  }
  lua_State* co;
  {
    GcPause pause(L_);
    co = lua_newthread(L_);
    runCo_ = co;
    runRef_ = luaL_ref(L_, LUA_REGISTRYINDEX);
    lua_rawgeti(co, LUA_REGISTRYINDEX, entryRefs_[kRun]);
  }
  std::string err;
  Outcome o = resume(co, 0, 0, err);
  afterResume(o, co, runRef_, 0, err);
  settleMemory();
}

void LuaInstance::markStop(uint64_t drainDeadlineMs) {
  // A second call (process teardown) may only bring the deadline forward.
  uint64_t drain = drainDeadlineMs_.load(std::memory_order_relaxed);
  while (
      (drain == 0 || drainDeadlineMs < drain) &&
      !drainDeadlineMs_.compare_exchange_weak(drain, drainDeadlineMs, std::memory_order_relaxed)) {
  }
  stopRequested_ = true;
  // Code running now (deadline non-zero) must end by the limit: lower its deadline, never
  // raise it, and never arm it for a thread that has just left Lua (0).
  const uint64_t limit = stopLimit(Watchdog::nowMs());
  uint64_t cur = deadline_.deadlineMs.load(std::memory_order_relaxed);
  while (cur != 0 && cur > limit &&
         !deadline_.deadlineMs.compare_exchange_weak(cur, limit, std::memory_order_relaxed)) {
  }
}

void LuaInstance::requestStop() {
  stopRequested_ = true;
  if (stopHooksRan_) return;
  stopHooksRan_ = true;
  // Suspended waits return early (sleeps end, queue receives give nil): run() sees
  // must_stop() and returns.
  auto hooks = std::move(stopHooks_);
  stopHooks_.clear();
  for (auto& [id, fn] : hooks) fn();
}

// --- coroutines ------------------------------------------------------------------------

uint64_t LuaInstance::beginWait(lua_State* L) {
  dropWaitOf(L);  // one wait per coroutine: an older one never got to yield
  uint64_t id = ++nextWaitId_;
  // The reference is taken on L, the running coroutine: an allocation that fails raises
  // its error there. On L_, which is not running, nothing would catch it.
  lua_pushthread(L);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  waits_.emplace(id, Wait{ref, runningConn_, L});
  coWait_[L] = id;
  suspended_ = true;
  return id;
}

void LuaInstance::dropWaitOf(lua_State* co) {
  auto it = coWait_.find(co);
  if (it != coWait_.end()) cancelWait(it->second);
}

void LuaInstance::cancelWait(uint64_t id) {
  auto it = waits_.find(id);
  if (it == waits_.end()) return;
  if (L_) luaL_unref(L_, LUA_REGISTRYINDEX, it->second.coRef);
  coWait_.erase(it->second.co);
  waits_.erase(it);
  // Cancelled before the coroutine yielded (the thing it waited for was there already).
  if (id == nextWaitId_) suspended_ = false;
}

uint64_t LuaInstance::addStopHook(std::function<void()> fn) {
  uint64_t id = ++nextHookId_;
  stopHooks_.emplace(id, std::move(fn));
  return id;
}

void LuaInstance::removeStopHook(uint64_t id) {
  stopHooks_.erase(id);
}

void LuaInstance::wake(uint64_t id, std::function<int(lua_State*)> push) {
  if (depth_ > 0 || batch_) {
    // Lua is running on this instance (the wake comes from a call it made): resume on the
    // next loop turn, never inside another coroutine.
    uint64_t gen = generation_;
    host_->addTimer(0, [this, gen, id, push = std::move(push)]() mutable {
      if (gen == generation_) wake(id, std::move(push));
    });
    return;
  }
  auto it = waits_.find(id);
  if (it == waits_.end() || !L_) return;
  Wait w = it->second;
  waits_.erase(it);
  coWait_.erase(w.co);
  lua_State* co;
  int n;
  {
    GcPause pause(L_);
    lua_rawgeti(L_, LUA_REGISTRYINDEX, w.coRef);
    co = lua_tothread(L_, -1);
    lua_pop(L_, 1);
    n = push ? push(co) : 0;
  }
  std::string err;
  Outcome o = resume(co, n, w.conn, err);
  if (o == Outcome::Stopped) {
    stoppedByWatchdog("a resumed coroutine");
    return;
  }
  afterResume(o, co, w.coRef, w.conn, err);
  settleMemory();
}

void LuaInstance::afterResume(Outcome o, lua_State* co, int coRef, uint64_t conn,
                              const std::string& err) {
  if (!parkedConnect_.empty() && parkedConnect_.contains(co)) {
    afterConnectResume(o, co, coRef, err);
    return;
  }
  switch (o) {
    case Outcome::Suspended:
      // Waits again: the new wait holds its own reference.
      luaL_unref(L_, LUA_REGISTRYINDEX, coRef);
      return;
    case Outcome::Done:
      // A handler that had suspended returned and its dispatcher went back for more: the
      // coroutine can serve the next batches (unless there is one already).
      if (!dispatcherCo_) {
        dispatcherCo_ = co;
        dispatcherRef_ = coRef;
      } else {
        luaL_unref(L_, LUA_REGISTRYINDEX, coRef);
      }
      if (conn && serviceHost()) serviceHost()->release(conn);
      return;
    case Outcome::Finished:
      luaL_unref(L_, LUA_REGISTRYINDEX, coRef);
      if (co == runCo_) runDone_ = true;
      if (conn && serviceHost()) serviceHost()->release(conn);
      return;
    case Outcome::Failed:
      luaL_unref(L_, LUA_REGISTRYINDEX, coRef);
      if (co == runCo_) runDone_ = true;
      if (conn) {
        // A handler of that connection, resumed after it had suspended.
        connectionFailed(conn, "onMessage (resumed)", err);
      } else {
        failed(co == runCo_ ? "run" : "coroutine", err);
      }
      if (conn && serviceHost()) serviceHost()->release(conn);
      return;
    case Outcome::Stopped:
      stoppedByWatchdog(co == runCo_ ? "run" : "coroutine");
      return;
  }
}

void LuaInstance::callRef(int fnRef, const char* what, std::function<int(lua_State*)> push,
                          std::shared_ptr<bool> alive) {
  if (depth_ > 0 || batch_) {
    uint64_t gen = generation_;
    host_->addTimer(0, [this, gen, fnRef, what, push = std::move(push), alive] {
      if (gen == generation_ && (!alive || *alive)) callRef(fnRef, what, push, alive);
    });
    return;
  }
  if (!L_) return;
  int n;
  {
    GcPause pause(L_);
    lua_rawgeti(L_, LUA_REGISTRYINDEX, fnRef);
    n = push ? push(L_) : 0;
  }
  call(what, n);
}

void LuaInstance::spawnRef(int ref) {
  if (!L_) return;
  lua_State* co;
  int coRef;
  {
    GcPause pause(L_);
    co = lua_newthread(L_);
    coRef = luaL_ref(L_, LUA_REGISTRYINDEX);
    lua_rawgeti(L_, LUA_REGISTRYINDEX, ref);
    luaL_unref(L_, LUA_REGISTRYINDEX, ref);
    lua_xmove(L_, co, 1);
  }
  std::string err;
  Outcome o = resume(co, 0, 0, err);
  afterResume(o, co, coRef, 0, err);
  settleMemory();
}

void LuaInstance::spawn(lua_State* L, int nargs) {
  // Stack of L: fn, args... -> moved into a new coroutine, started on the next loop turn.
  // The references are taken on L, the running coroutine, so that a failed allocation
  // raises its error where it can be caught (see beginWait).
  lua_State* co = lua_newthread(L);
  lua_insert(L, -(nargs + 2));
  lua_xmove(L, co, nargs + 1);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);  // the thread
  uint64_t gen = generation_;
  host_->addTimer(0, [this, gen, ref, co, nargs] {
    if (gen != generation_ || !L_) return;
    std::string err;
    Outcome o = resume(co, nargs, 0, err);
    afterResume(o, co, ref, 0, err);
    settleMemory();
  });
}

}  // namespace lapps
