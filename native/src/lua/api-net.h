// lapps.websocket, lapps.tcp, lapps.http (coroutine style) and the LAppS cws module (callbacks).
#pragma once

struct lua_State;

namespace lapps {

class LuaInstance;

// The `lapps` root table is on top of the stack; adds lapps.websocket, lapps.tcp and
// lapps.http, and registers cws in package.preload. Leaves the stack as it found it.
void registerNetApi(lua_State* L, LuaInstance* instance);

}  // namespace lapps
