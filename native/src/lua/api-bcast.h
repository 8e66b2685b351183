// The `bcast` module (LAppS broadcast channels): bcast:create(id), bcast:subscribe(id,
// handler), bcast:unsubscribe(id, handler), bcast:send(id, message[, opcode]). Each returns
// true, or false and a message.
#pragma once

struct lua_State;

namespace lapps {

class ServiceInstance;

// Pushes the module table; its functions act on `instance`'s worker.
void pushBcastApi(lua_State* L, ServiceInstance* instance);

}  // namespace lapps
