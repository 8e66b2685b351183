// lapps.tcp.connect (coroutine style: calls suspend the calling coroutine until something
// happens, the loop goes on), on the non-blocking client in native/src/client driven by the
// instance's host loop. chunks/net.lua is its Lua half.
#include <lua.hpp>

#include <algorithm>
#include <string>

#include "client/tcp-client.h"
#include "lua/api-net-common.h"

namespace lapps::net {

namespace {

// A TCP client with its own buffer of received bytes.
class LuaTcp final : public NetSocket, public TcpClientListener {
 public:
  static constexpr const char* kMeta = "lapps.tcp";
  static constexpr const char* kName = "tcp";

  explicit LuaTcp(LuaInstance* inst) : NetSocket(inst), client(*inst->host(), *this) {}
  void onConnect() override { opened(); }
  void onData(const uint8_t* data, size_t len) override {
    buffer.append(reinterpret_cast<const char*>(data), len);
    if (buffer.size() > kInboxLimit) client.pauseReading();
    notify();
  }
  void onClosed(std::string_view error) override {
    closedWith(error.empty() ? "closed" : std::string(error));
  }
  size_t queued() const { return buffer.size(); }

  TcpClient client;
  std::string buffer;
};

// __tcp_open(host, port, options) -> obj | nil, err
int tcpOpen(lua_State* L) {
  LuaInstance* inst = self(L);
  const char* host = luaL_checkstring(L, 1);
  lua_Number port = luaL_checknumber(L, 2);
  if (!(port >= 1 && port <= 65535))
    return luaL_error(L, "lapps.tcp.connect: port must be 1..65535");
  std::string err;
  TlsOptions tls;
  bool useTls = false;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "tls");
    useTls = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  if (useTls && !tlsFromOptions(L, 3, inst, tls, err)) return luautil::nilError(L, err);
  auto* obj = new LuaTcp(inst);
  return pushConnecting(L, inst, obj, err, [&](std::string& e) {
    return obj->client.connect(host, uint16_t(port), useTls ? &tls : nullptr, e);
  });
}

// __tcp_take(obj, max) -> up to max buffered bytes (all when max is nil) | nil
int tcpTake(lua_State* L) {
  auto* o = checkObject<LuaTcp>(L, 1, LuaTcp::kMeta, self(L));
  if (!o || o->buffer.empty()) return 0;
  size_t n = o->buffer.size();
  if (lua_isnumber(L, 2)) n = std::min(n, size_t(std::max<lua_Number>(1, lua_tonumber(L, 2))));
  lua_pushlstring(L, o->buffer.data(), n);
  o->buffer.erase(0, n);
  if (o->buffer.size() <= kInboxLimit / 2) o->client.resumeReading();
  return 1;
}

int tcpSend(lua_State* L) {
  auto* o = checkObject<LuaTcp>(L, 1, LuaTcp::kMeta, self(L));
  size_t len;
  const char* data = luaL_checklstring(L, 2, &len);
  if (o && !o->closed && o->client.send(reinterpret_cast<const uint8_t*>(data), len)) {
    lua_pushboolean(L, true);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, o ? "socket is closed" : "socket is gone");
  return 2;
}

int tcpClose(lua_State* L) {
  auto* o = checkObject<LuaTcp>(L, 1, LuaTcp::kMeta, self(L));
  if (o) o->client.close();
  return 0;
}

const luaL_Reg kRaw[] = {{"open", tcpOpen},
                         {"take", tcpTake},
                         {"send", tcpSend},
                         {"close", tcpClose},
                         {nullptr, nullptr}};

}  // namespace

const NetApi kTcpApi = socketApi<LuaTcp>("tcp", kRaw);

}  // namespace lapps::net
