// Thin Lua wrappers over FFI entry points, as for `ws` (see api-ws.cc): the checks that
// Lua can do stay in Lua; the C side owns channel ids, handles and frame encoding.
#include "lua/api-bcast.h"

#include <lua.hpp>

#include <cstring>
#include <string_view>

#include "core/broadcast.h"
#include "core/handle.h"
#include "core/service-host.h"
#include "core/service-instance.h"
#include "core/shared-buffer.h"
#include "protocol/frame-encoder.h"
#include "protocol/utf8-validator.h"

namespace lapps {

namespace {

enum BcastResult : int {
  kOk = 0,
  kBadChannel = 1,
  kNoChannel = 2,
  kNoConnection = 3,
  kTextNotUtf8 = 4,
};

// Channel ids are integers; LAppS services use small numbers.
bool toChannel(double v, uint64_t& out) {
  if (!(v >= 0 && v < 9007199254740992.0)) return false;
  out = uint64_t(v);
  return double(out) == v;
}

// subscribe, unsubscribe and broadcast answer Ok, NoChannel or NoConnection: nothing is
// queued to a connection, so it is never Closing or a SlowConsumer.
int fromStatus(SendStatus s) {
  return s == SendStatus::Ok ? kOk : s == SendStatus::NoChannel ? kNoChannel : kNoConnection;
}

// The instance's worker, or null for a standalone instance (whose broadcasts go through the
// server).
ServiceHost* workerOf(void* instance) {
  return static_cast<ServiceInstance*>(instance)->serviceHost();
}
SharedServices& serverOf(void* instance) {
  return *static_cast<ServiceInstance*>(instance)->shared();
}
uint32_t serviceOf(void* instance) {
  return static_cast<ServiceInstance*>(instance)->service();
}

constexpr const char* kBcastModule = R"lua(
local create_ptr, sub_ptr, unsub_ptr, send_ptr, instance_ptr, oon_error = ...
local ffi = require("ffi")
local create = ffi.cast("int (*)(void *, double)", create_ptr)
local subscribe = ffi.cast("int (*)(void *, double, double)", sub_ptr)
local unsubscribe = ffi.cast("int (*)(void *, double, double)", unsub_ptr)
local send = ffi.cast("int (*)(void *, double, int, const char *, size_t)", send_ptr)
local instance = ffi.cast("void *", instance_ptr)
local type = type
local errors = {
  "channel id must be a non-negative integer",
  "no such channel (create it with bcast:create first)",
  "no such connection",
  "text message is not valid UTF-8 (send it as binary, opcode 2)",
}
local bcast = {}
local function result(name, rc)
  if rc == 0 then return true end
  return false, "bcast:" .. name .. ": " .. errors[rc]
end
function bcast.create(a, b)
  if a == bcast then a = b end
  if type(a) ~= "number" then return false, "bcast:create: " .. errors[1] end
  return result("create", create(instance, a))
end
function bcast.subscribe(a, b, c)
  if a == bcast then a, b = b, c end
  if type(a) ~= "number" then return false, "bcast:subscribe: " .. errors[1] end
  if type(b) ~= "number" then return false, "bcast:subscribe: handler must be a number" end
  return result("subscribe", subscribe(instance, a, b))
end
function bcast.unsubscribe(a, b, c)
  if a == bcast then a, b = b, c end
  if type(a) ~= "number" then return false, "bcast:unsubscribe: " .. errors[1] end
  if type(b) ~= "number" then return false, "bcast:unsubscribe: handler must be a number" end
  return result("unsubscribe", unsubscribe(instance, a, b))
end
-- bcast:send(id, message[, opcode]): a string goes as is (binary unless opcode is 1); a
-- table (LAppS OON object) is encoded to CBOR once and sent as binary.
function bcast.send(a, b, c, d)
  if a == bcast then a, b, c = b, c, d end
  if type(a) ~= "number" then return false, "bcast:send: " .. errors[1] end
  local opcode = c or 2
  if opcode ~= 1 and opcode ~= 2 then
    return false, "bcast:send: opcode must be 1 (text) or 2 (binary)"
  end
  if type(b) == "table" then
    if a == 0 then return false, "bcast:send: channel 0 carries responses, not broadcasts" end
    local why = oon_error(b)
    if why then return false, "bcast:send: " .. why end
    local codec = lapps and lapps.cbor
    if not codec then return false, "bcast:send: tables need the cbor module" end
    local bytes, err = codec.encode(b)
    if not bytes then return false, "bcast:send: " .. tostring(err) end
    b, opcode = bytes, 2
  elseif type(b) ~= "string" then
    return false, "bcast:send: message must be a string or a table"
  end
  return result("send", send(instance, a, opcode, b, #b))
end
return bcast
)lua";

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int lapps_bcast_create(void* instance, double id) {
  uint64_t ch;
  if (!toChannel(id, ch)) return kBadChannel;
  serverOf(instance).channels().create(ch);
  return kOk;
}

__attribute__((visibility("default"))) int lapps_bcast_subscribe(void* instance, double id,
                                                                 double handle) {
  uint64_t ch, h;
  if (!toChannel(id, ch)) return kBadChannel;
  if (!Handle::fromNumber(handle, h)) return kNoConnection;
  if (!serverOf(instance).channels().exists(ch)) return kNoChannel;
  // A standalone instance has no connections of its own: any handle is another service's.
  ServiceHost* w = workerOf(instance);
  return w ? fromStatus(w->subscribe(serviceOf(instance), ch, h)) : kNoConnection;
}

__attribute__((visibility("default"))) int lapps_bcast_unsubscribe(void* instance, double id,
                                                                   double handle) {
  uint64_t ch, h;
  if (!toChannel(id, ch)) return kBadChannel;
  if (!Handle::fromNumber(handle, h)) return kNoConnection;
  if (!serverOf(instance).channels().exists(ch)) return kNoChannel;
  ServiceHost* w = workerOf(instance);
  return w ? fromStatus(w->unsubscribe(serviceOf(instance), ch, h)) : kNoConnection;
}

__attribute__((visibility("default"))) int lapps_bcast_send(void* instance, double id, int opcode,
                                                            const char* data, size_t len) {
  uint64_t ch;
  if (!toChannel(id, ch)) return kBadChannel;
  const auto* bytes = reinterpret_cast<const uint8_t*>(data);
  if (opcode == 1 && !isValidUtf8(bytes, len)) return kTextNotUtf8;
  // Encoded once; every subscriber's queue shares this buffer.
  SharedBuffer* frame =
      encodeBroadcastFrame(opcode == 1 ? Opcode::Text : Opcode::Binary, bytes, len);
  ServiceHost* w = workerOf(instance);
  int rc =
      fromStatus(w ? w->broadcast(ch, frame) : serverOf(instance).broadcastFromOutside(ch, frame));
  frame->release();
  return rc;
}

}  // extern "C"

void pushBcastApi(lua_State* L, ServiceInstance* instance) {
  if (luaL_loadbuffer(L, kBcastModule, std::char_traits<char>::length(kBcastModule),
                      "=[lapps bcast]") != 0) {
    lua_error(L);
  }
  lua_pushlightuserdata(L, reinterpret_cast<void*>(&lapps_bcast_create));
  lua_pushlightuserdata(L, reinterpret_cast<void*>(&lapps_bcast_subscribe));
  lua_pushlightuserdata(L, reinterpret_cast<void*>(&lapps_bcast_unsubscribe));
  lua_pushlightuserdata(L, reinterpret_cast<void*>(&lapps_bcast_send));
  lua_pushlightuserdata(L, instance);
  lua_getfield(L, LUA_REGISTRYINDEX, "lapps.protocol.oon");
  lua_call(L, 6, 1);
}

}  // namespace lapps
