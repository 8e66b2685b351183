#include "lua/api-cbor.h"

#include <lua.hpp>

#include <string>

#include "lua/api-util.h"
#include "lua/lua-value.h"

namespace lapps {

namespace {

int encode(lua_State* L) {
  lua_settop(L, 1);
  std::string out, err;
  bool ok = encodeCbor(L, 1, out, err);
  return luautil::pushEncoded(L, ok, out, err);
}

int decode(lua_State* L) {
  if (lua_type(L, 1) != LUA_TSTRING) return luautil::argError(L, "cbor.decode", "string", 1);
  size_t n;
  const char* s = lua_tolstring(L, 1, &n);
  std::string err;
  if (pushCbor(L, reinterpret_cast<const uint8_t*>(s), n, err)) return 1;
  return luautil::nilError(L, err);
}

}  // namespace

int openCbor(lua_State* L) {
  return luautil::pushValueModule(L, "cbor", encode, decode);
}

}  // namespace lapps
