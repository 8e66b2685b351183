// Connect time in Lua: the request table onConnect receives, the C function that turns what
// it returned into the handshake's answer, and ws:info.
#pragma once

#include <cstdint>

#include "core/connect.h"

struct lua_State;

namespace lapps {

class LuaInstance;

// Pushes the function of the connect coroutine (lua/chunks/connect.lua): resumed with
// onConnect, the handler and a pointer to the ConnectRequest (alive for that resume), it
// makes the request table (docs/lua-api.md, "onConnect"), calls onConnect protected, hands
// its results to instance->connectAnswered, and yields `done` for the next handshake.
void pushConnectWrapper(lua_State* L, LuaInstance* instance, int tracebackIndex, void* done);
// ws:info(handler), added to the ws table on top of the stack.
void addWsInfo(lua_State* L, LuaInstance* instance);

}  // namespace lapps
