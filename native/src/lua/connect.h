// Connect time in Lua: the request table onConnect receives, the C function that turns what
// it returned into the handshake's answer, and ws:info.
#pragma once

#include <cstdint>

#include "core/connect.h"

struct lua_State;

namespace lapps {

class LuaInstance;

// Pushes onConnect's `request` table (docs/lua-api.md, "onConnect").
void pushConnectRequest(lua_State* L, const ConnectRequest& req);
// Pushes the wrapper every onConnect runs in: function(onConnect, handler, request) that
// calls it protected and hands its results to instance->connectAnswered.
void pushConnectWrapper(lua_State* L, LuaInstance* instance, int tracebackIndex);
// ws:info(handler), added to the ws table on top of the stack.
void addWsInfo(lua_State* L, LuaInstance* instance);

}  // namespace lapps
