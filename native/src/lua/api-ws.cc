// ws:send and ws:close are thin Lua wrappers over two C entry points called through the
// LuaJIT FFI: the JIT compiles a service's onMessage together with its sends, where a
// classic lua_CFunction would force every call back into the interpreter.
#include "lua/api-ws.h"

#include <lua.hpp>

#include <cmath>
#include <string_view>

#include "core/handle.h"
#include "core/service-host.h"
#include "lua/lua-instance.h"
#include "protocol/close-code.h"
#include "protocol/frame-encoder.h"
#include "protocol/utf8-validator.h"

namespace lapps {

namespace {

// Result codes shared with the Lua wrapper below (its `errors` table is indexed by them).
// What send and close answer (Ok, NoConnection, Closing, SlowConsumer; never NoChannel) is
// their C API code from the registry (core/service-host.h), which the table follows.
enum WsResult : int {
  kOk = 0,
  kNoConnection = 1,
  kClosing = 2,
  kSlowConsumer = 3,
  kTextNotUtf8 = 4,
  kBadCloseCode = 5,
  kReasonTooLong = 6,
  kReasonNotUtf8 = 7,
};
static_assert(sendStatusCode(SendStatus::Ok) == kOk &&
              sendStatusCode(SendStatus::NoConnection) == kNoConnection &&
              sendStatusCode(SendStatus::Closing) == kClosing &&
              sendStatusCode(SendStatus::SlowConsumer) == kSlowConsumer);

// The Lua side of the module. Upvalues come in as `...`: the two entry points and the
// instance, all as light userdata. Argument checks stay in Lua, where the JIT removes
// them for well-typed calls; the C side checks what Lua cannot (handles, UTF-8).
constexpr const char* kWsModule = R"lua(
local send_ptr, close_ptr, instance_ptr, send_object = ...
local ffi = require("ffi")
local send = ffi.cast("int (*)(void *, double, int, const char *, size_t)", send_ptr)
local close = ffi.cast("int (*)(void *, double, double, const char *, size_t)", close_ptr)
local instance = ffi.cast("void *", instance_ptr)
local type = type
local errors = {
  "no such connection",
  "connection is closing",
  "connection closed: slow consumer",
  "ws:send: text message is not valid UTF-8 (send it as binary, opcode 2)",
  "ws:close: invalid close code (use 1000-1003, 1007-1014 or 3000-4999)",
  "ws:close: reason longer than 123 bytes",
  "ws:close: reason is not valid UTF-8",
}
local ws = {}
-- Called as ws:send(handler, opcode, message) (LAppS) or ws.send(handler, opcode, message).
function ws.send(a, b, c, d)
  if a == ws then a, b, c = b, c, d end
  if type(a) ~= "number" then return false, "ws:send: handler must be a number" end
  -- ws:send(handler, object): a LAppS response or OON, checked and encoded to CBOR.
  if type(b) == "table" then return send_object(a, b) end
  if b ~= 1 and b ~= 2 then
    if type(b) ~= "number" then return false, "ws:send: opcode must be a number" end
    return false, "ws:send: opcode must be 1 (text) or 2 (binary)"
  end
  if type(c) ~= "string" then return false, "ws:send: message must be a string" end
  local rc = send(instance, a, b, c, #c)
  if rc == 0 then return true end
  return false, errors[rc]
end
-- ws:close(handler[, code[, reason]])
function ws.close(a, b, c, d)
  if a == ws then a, b, c = b, c, d end
  if type(a) ~= "number" then return false, "ws:close: handler must be a number" end
  if b == nil then b = 1000 end
  if type(b) ~= "number" then return false, "ws:close: code must be a number" end
  if c == nil then c = "" end
  if type(c) ~= "string" then return false, "ws:close: reason must be a string" end
  local rc = close(instance, a, b, c, #c)
  if rc == 0 then return true end
  return false, errors[rc]
end
return ws
)lua";

}  // namespace

extern "C" {

// FFI entry points: called from JIT-compiled Lua on the instance's worker thread.
// Preconditions (checked by the Lua wrapper): opcode is 1 or 2, data/reason are strings.
__attribute__((visibility("default"))) int lapps_ws_send(void* instance, double handle, int opcode,
                                                         const char* data, size_t len) {
  uint64_t h;
  if (!Handle::fromNumber(handle, h)) return kNoConnection;
  const auto* bytes = reinterpret_cast<const uint8_t*>(data);
  if (opcode == 1 && !isValidUtf8(bytes, len)) return kTextNotUtf8;
  auto* inst = static_cast<LuaInstance*>(instance);
  return sendStatusCode(inst->serviceHost()->send(
      inst->service(), h, opcode == 1 ? Opcode::Text : Opcode::Binary, bytes, len));
}

__attribute__((visibility("default"))) int lapps_ws_close(void* instance, double handle,
                                                          double code, const char* reason,
                                                          size_t len) {
  uint64_t h;
  if (!Handle::fromNumber(handle, h)) return kNoConnection;
  if (!(code >= 1000 && code <= 4999) || std::floor(code) != code ||
      !isValidCloseCode(uint16_t(code))) {
    return kBadCloseCode;
  }
  if (len > kMaxCloseReason) return kReasonTooLong;
  if (!isValidUtf8(reinterpret_cast<const uint8_t*>(reason), len)) return kReasonNotUtf8;
  auto* inst = static_cast<LuaInstance*>(instance);
  return sendStatusCode(inst->serviceHost()->close(inst->service(), h, uint16_t(code),
                                                   std::string_view(reason, len)));
}

}  // extern "C"

void registerWsApi(lua_State* L, LuaInstance* instance) {
  if (luaL_loadbuffer(L, kWsModule, std::char_traits<char>::length(kWsModule), "=[lapps ws]") !=
      0) {
    lua_error(L);  // a bug in the embedded chunk: load() reports it
  }
  lua_pushlightuserdata(L, reinterpret_cast<void*>(&lapps_ws_send));
  lua_pushlightuserdata(L, reinterpret_cast<void*>(&lapps_ws_close));
  lua_pushlightuserdata(L, instance);
  lua_getfield(L, LUA_REGISTRYINDEX, "lapps.protocol.send");
  lua_call(L, 4, 1);
  lua_setglobal(L, "ws");
}

}  // namespace lapps
