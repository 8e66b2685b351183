// lapps.websocket.connect (coroutine style: calls suspend the calling coroutine until
// something happens, the loop goes on), on the non-blocking client in native/src/client
// driven by the instance's host loop. chunks/net.lua is its Lua half.
#include <lua.hpp>

#include <deque>
#include <string>
#include <utility>

#include "base/text.h"
#include "client/ws-client.h"
#include "client/ws-url.h"
#include "lua/api-net-common.h"

namespace lapps::net {

namespace {

class LuaWebSocket final : public NetSocket, public WsClientListener {
 public:
  static constexpr const char* kMeta = "lapps.websocket";
  static constexpr const char* kName = "websocket";

  LuaWebSocket(LuaInstance* inst, WsClientOptions opts)
      : NetSocket(inst), client(*inst->host(), *this, std::move(opts)) {}

  void onOpen() override { opened(); }
  void onMessage(int opcode, const uint8_t* data, size_t len) override {
    inbox.emplace_back(opcode, std::string(reinterpret_cast<const char*>(data), len));
    inboxBytes += len;
    if (inboxBytes > kInboxLimit) client.pauseReading();
    notify();
  }
  void onClosed(uint16_t code, std::string_view reason, std::string_view error) override {
    closeCode = code;
    std::string num = std::to_string(code);
    closedWith(error.empty() ? concatText({"closed: ", num, reason.empty() ? "" : " ", reason})
                             : std::string(error));
  }
  size_t queued() const { return inbox.size(); }

  WsClient client;
  std::deque<std::pair<int, std::string>> inbox;
  size_t inboxBytes = 0;
  uint16_t closeCode = 0;
};

// __ws_open(url, options) -> obj | nil, err (connection started, not yet open)
int wsOpen(lua_State* L) {
  LuaInstance* inst = self(L);
  size_t len;
  const char* url = luaL_checklstring(L, 1, &len);
  WsClientOptions opts;
  std::string err;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "protocols");
    if (lua_istable(L, -1)) {
      for (int i = 1;; ++i) {
        lua_rawgeti(L, -1, i);
        if (!lua_isstring(L, -1)) {
          lua_pop(L, 1);
          break;
        }
        opts.protocols.emplace_back(lua_tostring(L, -1));
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
    lua_getfield(L, 2, "headers");
    if (lua_istable(L, -1)) {
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_isstring(L, -1)) {
          opts.headers.emplace_back(lua_tostring(L, -2), lua_tostring(L, -1));
        }
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
    lua_getfield(L, 2, "max_message_size");
    if (lua_isnumber(L, -1)) opts.maxMessageSize = uint64_t(lua_tonumber(L, -1));
    lua_pop(L, 1);
  }
  WsUrl parsed;
  if (!parseWsUrl(std::string_view(url, len), parsed, err) ||
      (parsed.secure && !tlsFromOptions(L, 2, inst, opts.tls, err))) {
    return luautil::nilError(L, err);
  }
  auto* obj = new LuaWebSocket(inst, std::move(opts));
  return pushConnecting(L, inst, obj, err, [&](std::string& e) {
    return obj->client.connect(std::string_view(url, len), e);
  });
}

// __ws_take(obj) -> message, opcode | nil
int wsTake(lua_State* L) {
  auto* o = checkObject<LuaWebSocket>(L, 1, LuaWebSocket::kMeta, self(L));
  if (!o || o->inbox.empty()) return 0;
  auto& [op, data] = o->inbox.front();
  lua_pushlstring(L, data.data(), data.size());
  lua_pushinteger(L, op);
  o->inboxBytes -= data.size();
  o->inbox.pop_front();
  if (o->inboxBytes <= kInboxLimit / 2) o->client.resumeReading();
  return 2;
}

// __ws_send(obj, opcode, data) -> true | nil, err
int wsSend(lua_State* L) {
  auto* o = checkObject<LuaWebSocket>(L, 1, LuaWebSocket::kMeta, self(L));
  int op = int(luaL_checkinteger(L, 2));
  size_t len;
  const char* data = luaL_checklstring(L, 3, &len);
  const char* why = "socket is gone";
  if (o && o->client.send(op, reinterpret_cast<const uint8_t*>(data), len, &why)) {
    lua_pushboolean(L, true);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, why);
  return 2;
}

// __ws_close(obj, code, reason)
int wsClose(lua_State* L) {
  auto* o = checkObject<LuaWebSocket>(L, 1, LuaWebSocket::kMeta, self(L));
  if (!o) return 0;
  size_t len = 0;
  const char* reason = luaL_optlstring(L, 3, "", &len);
  o->client.close(uint16_t(luaL_optinteger(L, 2, 1000)), std::string_view(reason, len));
  return 0;
}

const luaL_Reg kRaw[] = {
    {"open", wsOpen}, {"take", wsTake}, {"send", wsSend}, {"close", wsClose}, {nullptr, nullptr}};

}  // namespace

const NetApi kWebSocketApi = socketApi<LuaWebSocket>("ws", kRaw);

}  // namespace lapps::net
