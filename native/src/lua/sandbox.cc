#include "lua/sandbox.h"

#include <lua.hpp>

#include <string>

#include "embedded-lua.h"

namespace lapps {

namespace {

// readfile(path) -> text | nil, err: the sandbox's only way to the file system (for
// require and loadfile of Lua sources).
int readFile(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  FILE* f = std::fopen(path, "rb");
  if (!f) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot open %s", path);
    return 2;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) luaL_addlstring(&b, buf, n);
  std::fclose(f);
  luaL_pushresult(&b);
  return 1;
}

}  // namespace

void applySandbox(lua_State* L) {
  if (embedded::kSandbox.load(L) != 0) lua_error(L);
  lua_pushcfunction(L, readFile);
  lua_call(L, 1, 0);
}

}  // namespace lapps
