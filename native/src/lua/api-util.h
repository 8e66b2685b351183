// Small helpers shared by the value modules (cbor, json, nljson): the two error contracts
// (misuse raises a Lua error, a runtime failure returns nil, err) and the array / object
// markers. Callers raise errors only before any C++ object with a destructor is alive.
#pragma once

#include <lua.hpp>

#include <string>

#include "lua/lua-value.h"

namespace lapps::luautil {

// Raises "<fn>: <expected> expected, got <type of arg idx>".
inline int argError(lua_State* L, const char* fn, const char* expected, int idx) {
  return luaL_error(L, "%s: %s expected, got %s", fn, expected, luaL_typename(L, idx));
}

inline int nilError(lua_State* L, const std::string& err) {
  lua_pushnil(L);
  lua_pushlstring(L, err.data(), err.size());
  return 2;
}

// Pushes the result of encoding: the string, or nil and the error.
inline int pushEncoded(lua_State* L, bool ok, const std::string& out, const std::string& err) {
  if (!ok) return nilError(L, err);
  lua_pushlstring(L, out.data(), out.size());
  return 1;
}

// mark(t): sets the metatable named by upvalue 1 on t (a new table when t is absent) and
// returns t. Upvalue 2 names the function for error messages.
inline int mark(lua_State* L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  } else if (!lua_istable(L, 1)) {
    return argError(L, lua_tostring(L, lua_upvalueindex(2)), "table", 1);
  }
  lua_settop(L, 1);
  luaL_getmetatable(L, lua_tostring(L, lua_upvalueindex(1)));
  lua_setmetatable(L, 1);
  return 1;
}

// Sets module[field] = mark function for the metatable `meta`, named "<module>.<field>" in
// error messages; the module table is on top.
inline void addMarker(lua_State* L, const char* module, const char* field, const char* meta) {
  lua_pushstring(L, meta);
  lua_pushfstring(L, "%s.%s", module, field);
  lua_pushcclosure(L, mark, 2);
  lua_setfield(L, -2, field);
}

// Sets module.null to the shared null sentinel; the module table is on top.
inline void addNull(lua_State* L) {
  lua_pushlightuserdata(L, nullValue());
  lua_setfield(L, -2, "null");
}

// Pushes a value module's table (cbor, json): encode, decode, null, and the array and
// object markers, named "<name>.array" and "<name>.object" in error messages.
inline int pushValueModule(lua_State* L, const char* name, lua_CFunction encode,
                           lua_CFunction decode) {
  initValueModel(L);
  lua_createtable(L, 0, 5);
  lua_pushcfunction(L, encode);
  lua_setfield(L, -2, "encode");
  lua_pushcfunction(L, decode);
  lua_setfield(L, -2, "decode");
  addNull(L);
  addMarker(L, name, "array", kArrayMeta);
  addMarker(L, name, "object", kObjectMeta);
  return 1;
}

}  // namespace lapps::luautil
