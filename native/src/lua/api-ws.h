// The `ws` module (LAppS RAW API): ws:send(handler, opcode, message) and
// ws:close(handler, code[, reason]). Both return true, or false and a message.
#pragma once

struct lua_State;

namespace lapps {

class LuaInstance;

// Sets the global `ws` in L; its functions act on `instance`'s worker.
void registerWsApi(lua_State* L, LuaInstance* instance);

}  // namespace lapps
