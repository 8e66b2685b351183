// What the outbound socket APIs share: lapps.websocket (api-websocket.cc), lapps.tcp
// (api-tcp.cc), lapps.http (api-http.cc) and cws (api-cws.cc). api-net.cc registers them.
//
// A socket is an InstanceResource: the instance deletes it with its Lua state (even a state
// stopped mid-flight), and the userdata only points at it (checked with owns()).
#pragma once

#include <lua.hpp>

#include <string>

#include "client/tls-context.h"
#include "lua/api-lapps.h"
#include "lua/api-util.h"
#include "lua/lua-instance.h"

namespace lapps::net {

// Inbound bytes buffered for a socket nobody reads before reading pauses.
constexpr size_t kInboxLimit = 4 << 20;

inline LuaInstance* self(lua_State* L) {
  return static_cast<LuaInstance*>(lua_touserdata(L, lua_upvalueindex(1)));
}

// The instance's one T, kept in the registry under `key` as a light userdata owned by the
// instance; made with T(args...) the first time.
template <class T, class... Args>
T* perInstance(LuaInstance* inst, const char* key, Args... args) {
  lua_State* L = inst->state();
  lua_getfield(L, LUA_REGISTRYINDEX, key);
  auto* t = static_cast<T*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  if (t && inst->owns(t)) return t;
  t = new T(args...);
  inst->adopt(t);
  lua_pushlightuserdata(L, t);
  lua_setfield(L, LUA_REGISTRYINDEX, key);
  return t;
}

// Sets t[prefix .. name] = fn with the instance as upvalue 1, for each of fns; t is on top.
inline void setClosures(lua_State* L, const luaL_Reg* fns, LuaInstance* inst,
                        const std::string& prefix = {}) {
  for (const luaL_Reg* f = fns; f->name; ++f) {
    lua_pushlightuserdata(L, inst);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -2, (prefix + f->name).c_str());
  }
}

// A socket with at most one coroutine waiting on it.
class NetObject : public InstanceResource {
 public:
  explicit NetObject(LuaInstance* inst) : inst_(inst) {}
  ~NetObject() override { endWait(); }

  // Suspends the calling coroutine until notify() or the timeout (seconds < 0: none).
  // Returns lua_yield's result, or pushes false when the instance is stopping.
  int wait(lua_State* L, double seconds, const char* fn) {
    checkCanSuspend(L, inst_, fn);
    if (waitId_)
      return luaL_error(L, "%s: another coroutine is already waiting on this socket", fn);
    if (inst_->stopRequested()) {
      lua_pushboolean(L, false);
      return 1;
    }
    timedOut_ = false;
    waitId_ = inst_->beginWait(L);
    hookId_ = inst_->addStopHook([this] {
      hookId_ = 0;
      notify();
    });
    if (seconds >= 0) {
      timerId_ = inst_->host()->addTimer(uint64_t(seconds * 1000), [this] {
        timerId_ = 0;
        timedOut_ = true;
        notify();
      });
    }
    return lua_yield(L, 0);
  }
  bool timedOut() const { return timedOut_; }

  // Something happened: resume the waiting coroutine (it looks for itself what).
  void notify() {
    if (!waitId_) return;
    uint64_t id = waitId_;
    endWait();
    inst_->wake(id, nullptr);
  }

 protected:
  LuaInstance* inst_;

 private:
  void endWait() {
    if (hookId_) inst_->removeStopHook(hookId_);
    if (timerId_) inst_->host()->cancelTimer(timerId_);
    hookId_ = timerId_ = waitId_ = 0;
  }
  uint64_t waitId_ = 0, hookId_ = 0, timerId_ = 0;
  bool timedOut_ = false;
};

// A coroutine-style client socket (lapps.websocket, lapps.tcp): connecting, open, closed.
// Each kind T names its metatable (T::kMeta) and API (T::kName), and says how much it holds
// unread (T::queued()), for the raw calls below.
class NetSocket : public NetObject {
 public:
  using NetObject::NetObject;

  void opened() {
    open = true;
    notify();
  }
  void closedWith(std::string text) {
    closed = true;
    closeText = std::move(text);
    notify();
  }

  bool open = false, closed = false;
  std::string closeText;
};

template <class T>
T* checkObject(lua_State* L, int idx, const char* meta, LuaInstance* inst) {
  auto* p = static_cast<T**>(luaL_checkudata(L, idx, meta));
  if (!*p || !inst->owns(*p)) return nullptr;
  return *p;
}

template <class T>
void pushObject(lua_State* L, T* obj, const char* meta) {
  auto** ud = static_cast<T**>(lua_newuserdata(L, sizeof(T*)));
  *ud = obj;
  luaL_getmetatable(L, meta);
  lua_setmetatable(L, -2);
}

template <class T>
int gcObject(lua_State* L) {
  LuaInstance* inst = self(L);
  auto* p = static_cast<T**>(lua_touserdata(L, 1));
  if (*p) inst->drop(*p);
  *p = nullptr;
  return 0;
}

// Reads {verify = bool, ca = "file"} at idx (absent: verify with the system CAs) into
// tls.ctx, one context per instance and (verify, CA file).
bool tlsFromOptions(lua_State* L, int idx, LuaInstance* inst, TlsOptions& tls, std::string& err);

// Adopts obj and starts connecting it with connect(err): pushes the userdata, or drops obj
// and pushes nil, err.
template <class T, class Connect>
int pushConnecting(lua_State* L, LuaInstance* inst, T* obj, std::string& err, Connect connect) {
  inst->adopt(obj);
  if (!connect(err)) {
    inst->drop(obj);
    return luautil::nilError(L, err);
  }
  pushObject(L, obj, T::kMeta);
  return 1;
}

// The raw calls every NetSocket kind has.

// __<kind>_state(obj) -> "connecting" | "open" | "closed", close text, queued (messages or
// bytes)
template <class T>
int socketState(lua_State* L) {
  auto* o = checkObject<T>(L, 1, T::kMeta, self(L));
  if (!o) {
    lua_pushliteral(L, "closed");
    lua_pushliteral(L, "socket is gone");
    lua_pushinteger(L, 0);
    return 3;
  }
  lua_pushstring(L, o->closed && o->queued() == 0 ? "closed" : o->open ? "open" : "connecting");
  lua_pushlstring(L, o->closeText.data(), o->closeText.size());
  lua_pushinteger(L, lua_Integer(o->queued()));
  return 3;
}

// __<kind>_wait(obj, seconds) -> suspends; then "timeout" | true | false (stopping)
template <class T>
int socketWait(lua_State* L) {
  auto* o = checkObject<T>(L, 1, T::kMeta, self(L));
  if (!o) return luaL_error(L, "%s: socket is gone", T::kName);
  return o->wait(L, luaL_optnumber(L, 2, -1), T::kName);
}

template <class T>
int socketTimedOut(lua_State* L) {
  auto* o = checkObject<T>(L, 1, T::kMeta, self(L));
  lua_pushboolean(L, o && o->timedOut());
  return 1;
}

// One socket kind of the coroutine-style API: its metatable (with __gc) and its raw calls,
// which net.lua wraps as raw.<prefix>_<name>: state, wait and timed_out, and its own.
struct NetApi {
  const char* meta;
  const char* prefix;
  lua_CFunction gc, state, wait, timedOut;
  const luaL_Reg* raw;  // its own raw calls; ends with {nullptr, nullptr}
};

template <class T>
constexpr NetApi socketApi(const char* prefix, const luaL_Reg* raw) {
  return {T::kMeta, prefix, gcObject<T>, socketState<T>, socketWait<T>, socketTimedOut<T>, raw};
}
extern const NetApi kWebSocketApi;  // api-websocket.cc
extern const NetApi kTcpApi;        // api-tcp.cc
extern const NetApi kHttpApi;       // api-http.cc

// require("cws"), put in package.preload by registerNetApi (api-cws.cc). Upvalue 1: the
// instance.
int openCws(lua_State* L);

}  // namespace lapps::net
