#include "lua/coroutine-guard.h"

#include <lua.hpp>

#include "io/lua-thread.h"

namespace lapps {

namespace {

constexpr const char* kTooDeep =
    "C stack overflow (coroutines resumed inside coroutines, or recursion through C "
    "functions, nest too deeply)";

// Calls the original function (upvalue 1) with this call's arguments and results. No C++
// object lives in this frame: a Lua error may unwind through it.
int forward(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

// coroutine.resume(co, ...): like the original, which reports errors as false, message.
int resume(lua_State* L) {
  if (luaStackLow()) {
    lua_pushboolean(L, 0);
    lua_pushstring(L, kTooDeep);
    return 2;
  }
  return forward(L);
}

// The function coroutine.wrap returns: raises errors, like the original.
int resumeWrapped(lua_State* L) {
  if (luaStackLow()) return luaL_error(L, "%s", kTooDeep);
  return forward(L);
}

// coroutine.wrap(f): the original's function, behind the check above.
int wrap(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  lua_pushcclosure(L, resumeWrapped, 1);
  return 1;
}

}  // namespace

void guardCoroutines(lua_State* L) {
  lua_getglobal(L, "coroutine");
  lua_getfield(L, -1, "resume");
  lua_pushcclosure(L, resume, 1);
  lua_setfield(L, -2, "resume");
  lua_getfield(L, -1, "wrap");
  lua_pushcclosure(L, wrap, 1);
  lua_setfield(L, -2, "wrap");
  lua_pop(L, 1);
}

}  // namespace lapps
