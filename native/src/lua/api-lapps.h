// The `lapps` root module's coroutine runtime (lapps.sleep, lapps.spawn, lapps.timer,
// lapps.every, lapps.now) and the preloadable LAppS modules (mqr, nap, time, murmur,
// pam_auth, cws) registered in package.preload.
#pragma once

#include <cstdint>

struct lua_State;

namespace lapps {

class LuaInstance;

// The `lapps` root table is on top of the stack; leaves the stack as it found it.
void registerLappsApi(lua_State* L, LuaInstance* instance);

// Suspends the running coroutine for `ms` milliseconds (returns early when the instance is
// asked to stop). Call as `return suspendFor(L, self, ms);` from a lua_CFunction; raises a
// Lua error naming `fn` when L may not suspend.
int suspendFor(lua_State* L, LuaInstance* self, uint64_t ms, const char* fn);

// Raises "<fn>: cannot suspend here ..." unless L is a coroutine that may suspend.
void checkCanSuspend(lua_State* L, LuaInstance* self, const char* fn);

// mqr (mod-mqr.cc): pushes the module table.
int pushMqr(lua_State* L, LuaInstance* instance);

}  // namespace lapps
