#include "lua/api-json.h"

#include <lua.hpp>

#include <string>

#include "lua/api-util.h"
#include "lua/lua-value.h"

namespace lapps {

namespace {

constexpr int kMaxIndent = 64;

int encode(lua_State* L) {
  int indent = -1;
  if (!lua_isnoneornil(L, 2)) {
    if (!lua_istable(L, 2)) return luautil::argError(L, "json.encode", "options table", 2);
    lua_getfield(L, 2, "indent");
    if (!lua_isnil(L, -1)) {
      double d = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
      if (!(d >= 0 && d <= kMaxIndent && d == int(d))) {
        return luaL_error(L, "json.encode: indent must be an integer in 0..%d", kMaxIndent);
      }
      indent = int(d);
    }
  }
  lua_settop(L, 1);
  std::string out, err;
  bool ok = encodeJson(L, 1, out, err, indent);
  return luautil::pushEncoded(L, ok, out, err);
}

int decode(lua_State* L) {
  if (lua_type(L, 1) != LUA_TSTRING) return luautil::argError(L, "json.decode", "string", 1);
  size_t n;
  const char* s = lua_tolstring(L, 1, &n);
  std::string err;
  if (pushJson(L, s, n, err)) return 1;
  return luautil::nilError(L, err);
}

}  // namespace

int openJson(lua_State* L) {
  return luautil::pushValueModule(L, "json", encode, decode);
}

}  // namespace lapps
