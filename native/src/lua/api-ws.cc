// ws:send and ws:close are thin Lua wrappers over two C entry points called through the
// LuaJIT FFI: the JIT compiles a service's onMessage together with its sends, where a
// classic lua_CFunction would force every call back into the interpreter.
#include "lua/api-ws.h"

#include <lua.hpp>

#include <cmath>
#include <string_view>

#include "core/handle.h"
#include "core/service-host.h"
#include "embedded-lua.h"
#include "lua/connect.h"
#include "lua/lua-instance.h"
#include "lua/status-messages.h"
#include "protocol/close-code.h"
#include "protocol/frame-encoder.h"
#include "protocol/utf8-validator.h"

namespace lapps {

namespace {

// What send and close answer: a status's C API code from the registry (core/service-host.h;
// never NoChannel), or one of the checks of their own below. The Lua wrapper gets the
// message of each (lua/status-messages.h).
constexpr int kOk = sendStatusCode(SendStatus::Ok);
constexpr int kNoConnection = sendStatusCode(SendStatus::NoConnection);
enum WsResult : int {
  kTextNotUtf8 = kModuleResultBase,
  kBadCloseCode,
  kReasonTooLong,
  kReasonNotUtf8,
};
static_assert(kOk == 0, "the Lua wrapper reads 0 as success");

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
  if (embedded::kWs.load(L) != 0) {
    lua_error(L);  // a bug in the embedded chunk: load() reports it
  }
  lua_pushlightuserdata(L, reinterpret_cast<void*>(&lapps_ws_send));
  lua_pushlightuserdata(L, reinterpret_cast<void*>(&lapps_ws_close));
  lua_pushlightuserdata(L, instance);
  lua_getfield(L, LUA_REGISTRYINDEX, "lapps.protocol.send");
  pushStatusMessages(L, {{kTextNotUtf8, nullptr,
                          "ws:send: text message is not valid UTF-8 (send it as binary, opcode 2)"},
                         {kBadCloseCode, nullptr,
                          "ws:close: invalid close code (use 1000-1003, 1007-1014 or 3000-4999)"},
                         {kReasonTooLong, nullptr, "ws:close: reason longer than 123 bytes"},
                         {kReasonNotUtf8, nullptr, "ws:close: reason is not valid UTF-8"}});
  lua_call(L, 5, 1);
  addWsInfo(L, instance);
  lua_setglobal(L, "ws");
}

}  // namespace lapps
