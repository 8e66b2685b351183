#include "lua/api-ws.h"

#include <lua.hpp>

#include <cmath>
#include <string_view>

#include "core/handle.h"
#include "core/worker.h"
#include "lua/lua-instance.h"
#include "protocol/close-code.h"
#include "protocol/utf8-validator.h"

namespace lapps {

namespace {

LuaInstance* instanceOf(lua_State* L) {
  return static_cast<LuaInstance*>(lua_touserdata(L, lua_upvalueindex(1)));
}

// LAppS calls these with a colon (ws:send(...)); a dot call (ws.send(h, ...)) works too.
int firstArg(lua_State* L) {
  return lua_istable(L, 1) ? 2 : 1;
}

int fail(lua_State* L, const char* message) {
  lua_pushboolean(L, 0);
  lua_pushstring(L, message);
  return 2;
}

// Reads a handle argument; false when it cannot name any connection.
bool toHandle(lua_State* L, int idx, uint64_t& out) {
  if (lua_type(L, idx) != LUA_TNUMBER) return false;
  lua_Number n = lua_tonumber(L, idx);
  if (!(n >= 1 && n <= lua_Number(Handle::kMax)) || std::floor(n) != n) return false;
  out = uint64_t(n);
  return true;
}

int statusResult(lua_State* L, SendStatus s) {
  switch (s) {
    case SendStatus::Ok:
      lua_pushboolean(L, 1);
      return 1;
    case SendStatus::NoConnection:
      return fail(L, "no such connection");
    case SendStatus::Closing:
      return fail(L, "connection is closing");
    case SendStatus::SlowConsumer:
      return fail(L, "connection closed: slow consumer");
  }
  return fail(L, "unknown status");
}

int wsSend(lua_State* L) {
  int a = firstArg(L);
  uint64_t handle;
  if (lua_type(L, a) != LUA_TNUMBER) return fail(L, "ws:send: handler must be a number");
  if (!toHandle(L, a, handle)) return fail(L, "no such connection");
  if (lua_type(L, a + 1) != LUA_TNUMBER) return fail(L, "ws:send: opcode must be a number");
  lua_Number op = lua_tonumber(L, a + 1);
  if (op != 1 && op != 2) return fail(L, "ws:send: opcode must be 1 (text) or 2 (binary)");
  if (lua_type(L, a + 2) != LUA_TSTRING) return fail(L, "ws:send: message must be a string");
  size_t len;
  const char* msg = lua_tolstring(L, a + 2, &len);
  const auto* bytes = reinterpret_cast<const uint8_t*>(msg);
  if (op == 1 && !isValidUtf8(bytes, len)) {
    return fail(L, "ws:send: text message is not valid UTF-8 (send it as binary, opcode 2)");
  }
  Worker* w = instanceOf(L)->worker();
  return statusResult(L, w->send(handle, op == 1 ? Opcode::Text : Opcode::Binary, bytes, len));
}

int wsClose(lua_State* L) {
  int a = firstArg(L);
  uint64_t handle;
  if (lua_type(L, a) != LUA_TNUMBER) return fail(L, "ws:close: handler must be a number");
  if (!toHandle(L, a, handle)) return fail(L, "no such connection");
  lua_Number code = 1000;
  if (!lua_isnoneornil(L, a + 1)) {
    if (lua_type(L, a + 1) != LUA_TNUMBER) return fail(L, "ws:close: code must be a number");
    code = lua_tonumber(L, a + 1);
  }
  if (std::floor(code) != code || code < 1000 || code > 4999 || !isValidCloseCode(uint16_t(code))) {
    return fail(L, "ws:close: invalid close code (use 1000-1003, 1007-1014 or 3000-4999)");
  }
  size_t len = 0;
  const char* reason = "";
  if (!lua_isnoneornil(L, a + 2)) {
    if (lua_type(L, a + 2) != LUA_TSTRING) return fail(L, "ws:close: reason must be a string");
    reason = lua_tolstring(L, a + 2, &len);
    if (len > 123) return fail(L, "ws:close: reason longer than 123 bytes");
    if (!isValidUtf8(reinterpret_cast<const uint8_t*>(reason), len)) {
      return fail(L, "ws:close: reason is not valid UTF-8");
    }
  }
  Worker* w = instanceOf(L)->worker();
  return statusResult(L, w->close(handle, uint16_t(code), std::string_view(reason, len)));
}

}  // namespace

void registerWsApi(lua_State* L, LuaInstance* instance) {
  lua_createtable(L, 0, 2);
  lua_pushlightuserdata(L, instance);
  lua_pushcclosure(L, wsSend, 1);
  lua_setfield(L, -2, "send");
  lua_pushlightuserdata(L, instance);
  lua_pushcclosure(L, wsClose, 1);
  lua_setfield(L, -2, "close");
  lua_setglobal(L, "ws");
}

}  // namespace lapps
