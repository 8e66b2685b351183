// Outbound sockets for Lua: lapps.websocket.connect, lapps.tcp.connect and
// lapps.http.request (coroutine style: calls suspend the calling coroutine until something
// happens, the loop goes on), and LAppS's callback-style cws module. All sit on the
// non-blocking clients in native/src/client, driven by the instance's host loop:
// api-websocket.cc, api-tcp.cc, api-http.cc and api-cws.cc, with what they share in
// api-net-common.h. This file registers them.
#include <lua.hpp>

#include <string>

#include "embedded-lua.h"
#include "lua/api-net-common.h"
#include "lua/api-net.h"
#include "lua/lua-instance.h"

namespace lapps {

void registerNetApi(lua_State* L, LuaInstance* instance) {
  // lapps root on top.
  const net::NetApi* apis[] = {&net::kWebSocketApi, &net::kTcpApi, &net::kHttpApi};
  constexpr int kApis = int(sizeof apis / sizeof apis[0]);
  // The coroutine-style API over the raw calls (chunks/net.lua).
  if (embedded::kNet.load(L) != 0) lua_error(L);
  lua_pushvalue(L, -2);
  for (const net::NetApi* api : apis) {
    luaL_newmetatable(L, api->meta);
    lua_pushlightuserdata(L, instance);
    lua_pushcclosure(L, api->gc, 1);
    lua_setfield(L, -2, "__gc");
  }
  lua_newtable(L);
  for (const net::NetApi* api : apis) {
    const std::string prefix = std::string(api->prefix) + "_";
    const luaL_Reg common[] = {{"state", api->state},
                               {"wait", api->wait},
                               {"timed_out", api->timedOut},
                               {nullptr, nullptr}};
    net::setClosures(L, common, instance, prefix);
    net::setClosures(L, api->raw, instance, prefix);
  }
  lua_call(L, kApis + 2, 0);
  // cws in package.preload (LAppS: listed in `preload`).
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushlightuserdata(L, instance);
  lua_pushcclosure(L, net::openCws, 1);
  lua_setfield(L, -2, "cws");
  lua_pop(L, 2);
}

}  // namespace lapps
