#include "lua/api-lapps.h"

#include <time.h>
#include <lua.hpp>

#include <cmath>
#include <memory>

#include "embedded-lua.h"
#include "lua/api-jwt.h"
#include "lua/lua-instance.h"
#include "lua/mod-murmur.h"
#include "lua/mod-pam.h"
#include "lua/mod-time.h"

namespace lapps {

namespace {

LuaInstance* self(lua_State* L) {
  return static_cast<LuaInstance*>(lua_touserdata(L, lua_upvalueindex(1)));
}

// Seconds (a Lua number) to whole milliseconds, rounding up so a sleep is never shorter.
uint64_t toMs(lua_State* L, int idx, const char* fn) {
  double s = luaL_checknumber(L, idx);
  if (!(s >= 0) || s > 1e9) luaL_error(L, "%s: seconds must be a number between 0 and 1e9", fn);
  return uint64_t(std::ceil(s * 1000));
}

int lappsSleep(lua_State* L) {
  return suspendFor(L, self(L), toMs(L, 1, "lapps.sleep"), "lapps.sleep");
}

// lapps.spawn(fn, ...): runs fn(...) in a new coroutine on the next loop turn.
int lappsSpawn(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  self(L)->spawn(L, lua_gettop(L) - 1);
  return 0;
}

// __after(ms, fn) -> id: fn() runs in a new coroutine once ms have passed.
int lappsAfter(lua_State* L) {
  LuaInstance* inst = self(L);
  uint64_t ms = toMs(L, 1, "lapps.timer");
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  uint64_t gen = inst->generation();
  uint64_t id = inst->host()->addTimer(ms, [inst, gen, ref] {
    if (gen != inst->generation()) return;
    inst->spawnRef(ref);
  });
  lua_pushnumber(L, double(id));
  lua_pushnumber(L, double(ref));
  return 2;
}

// __cancel(id, ref) -> true if the timer had not fired yet.
int lappsCancel(lua_State* L) {
  LuaInstance* inst = self(L);
  uint64_t id = uint64_t(luaL_checknumber(L, 1));
  int ref = int(luaL_checknumber(L, 2));
  bool pending = inst->host()->cancelTimer(id);
  if (pending) luaL_unref(L, LUA_REGISTRYINDEX, ref);
  lua_pushboolean(L, pending);
  return 1;
}

double wallSeconds() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec / 1000000) / 1000.0;
}

int lappsNow(lua_State* L) {
  lua_pushnumber(L, wallSeconds());
  return 1;
}

int lappsMonotonic(lua_State* L) {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, double(ts.tv_sec) + double(ts.tv_nsec) / 1e9);
  return 1;
}

// --- nap (LAppS): n = nap:new(); n:sleep(s), n:usleep(us), n:nsleep(ns) -----------------
// In a coroutine the sleep suspends it; elsewhere in a standalone service (init) it blocks
// that service's own thread; in a reactive service outside a coroutine it is an error.
int napSleepFor(lua_State* L, double seconds, const char* fn) {
  LuaInstance* inst = self(L);
  if (!(seconds >= 0) || seconds > 1e9) return luaL_error(L, "%s: duration must be >= 0", fn);
  if (inst->canSuspend(L)) return suspendFor(L, inst, uint64_t(std::ceil(seconds * 1000)), fn);
  if (inst->role() == LuaInstance::Role::Standalone) {
    timespec ts{time_t(seconds), long((seconds - std::floor(seconds)) * 1e9)};
    while (::nanosleep(&ts, &ts) != 0) {
    }
    return 0;
  }
  checkCanSuspend(L, inst, fn);
  return 0;
}
// Accepts n:sleep(x) and nap.sleep(x) alike: the duration is the last argument.
double napArg(lua_State* L) {
  return luaL_checknumber(L, lua_gettop(L) >= 2 ? 2 : 1);
}
int napSleep(lua_State* L) {
  return napSleepFor(L, napArg(L), "nap:sleep");
}
int napUsleep(lua_State* L) {
  return napSleepFor(L, napArg(L) / 1e6, "nap:usleep");
}
int napNsleep(lua_State* L) {
  return napSleepFor(L, napArg(L) / 1e9, "nap:nsleep");
}
int napNew(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(2));  // the module table serves as the sleeper
  return 1;
}

int openNap(lua_State* L) {
  lua_newtable(L);
  const luaL_Reg fns[] = {
      {"sleep", napSleep}, {"usleep", napUsleep}, {"nsleep", napNsleep}, {nullptr, nullptr}};
  for (const luaL_Reg* f = fns; f->name; ++f) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -2, f->name);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, napNew, 2);
  lua_setfield(L, -2, "new");
  return 1;
}

int openMqrPreload(lua_State* L) {
  return pushMqr(L, self(L));
}

}  // namespace

void checkCanSuspend(lua_State* L, LuaInstance* inst, const char* fn) {
  if (inst->canSuspend(L)) return;
  luaL_error(L,
             "%s: cannot suspend here: only onMessage, onConnect, run(), and functions started by "
             "lapps.spawn / lapps.timer / lapps.every may wait (not onStart, onDisconnect, "
             "init, or a coroutine created by the service)",
             fn);
}

int suspendFor(lua_State* L, LuaInstance* inst, uint64_t ms, const char* fn) {
  checkCanSuspend(L, inst, fn);
  if (inst->stopRequested()) return 0;
  uint64_t id = inst->beginWait(L);
  Host* host = inst->host();
  // The timer and the stop hook each cancel the other; whichever comes first wakes.
  auto hook = std::make_shared<uint64_t>(0);
  uint64_t timer = host->addTimer(ms, [inst, id, hook] {
    inst->removeStopHook(*hook);
    inst->wake(id, nullptr);
  });
  *hook = inst->addStopHook([inst, id, host, timer] {
    host->cancelTimer(timer);
    inst->wake(id, nullptr);
  });
  return lua_yield(L, 0);
}

void registerLappsApi(lua_State* L, LuaInstance* instance) {
  // lapps root on top.
  const luaL_Reg fns[] = {{"sleep", lappsSleep},
                          {"spawn", lappsSpawn},
                          {"now", lappsNow},
                          {"monotonic", lappsMonotonic},
                          {nullptr, nullptr}};
  for (const luaL_Reg* f = fns; f->name; ++f) {
    lua_pushlightuserdata(L, instance);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -2, f->name);
  }
  if (embedded::kTimers.load(L) != 0) lua_error(L);
  lua_pushvalue(L, -2);
  lua_pushlightuserdata(L, instance);
  lua_pushcclosure(L, lappsAfter, 1);
  lua_pushlightuserdata(L, instance);
  lua_pushcclosure(L, lappsCancel, 1);
  lua_call(L, 3, 0);
  // lapps.jwt: token verification and signing (security/jwt.h).
  openJwt(L);
  lua_setfield(L, -2, "jwt");

  // Preloadable modules: require("mqr") etc., or listed in the service's `preload`.
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  const struct {
    const char* name;
    lua_CFunction open;
    bool needsInstance;
  } mods[] = {{"mqr", openMqrPreload, true},
              {"nap", openNap, true},
              {"time", openTime, false},
              {"murmur", openMurmur, false},
              {"pam_auth", openPamAuth, false}};
  for (const auto& m : mods) {
    if (m.needsInstance) {
      lua_pushlightuserdata(L, instance);
      lua_pushcclosure(L, m.open, 1);
    } else {
      lua_pushcfunction(L, m.open);
    }
    lua_setfield(L, -2, m.name);
  }
  lua_pop(L, 2);
}

}  // namespace lapps
