// The cws module (LAppS, callback style), on the non-blocking WebSocket client in
// native/src/client driven by the instance's host loop.
#include <lua.hpp>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include "client/ws-client.h"
#include "client/ws-url.h"
#include "embedded-lua.h"
#include "lua/api-net-common.h"

namespace lapps::net {

namespace {

constexpr const char* kCwsMeta = "lapps.cws";

// cws:new(url, {onopen, onmessage, onerror, onclose}[, {verify, ca}]) -> socket
// cws:send(handler, data, opcode) -> true | false, err; socket:close(); cws:eventLoop().
// Callbacks run on the instance's loop as soon as the socket has news; eventLoop() gives
// the loop a turn (in a standalone run() it waits up to 100 ms for news).
//
// As in LAppS, callbacks get the socket's handler as a number (LAppS gave its fd), which
// services concatenate into strings and use as table keys. Numbers are per instance and
// never reused, so a stale or made-up number finds nothing and is refused.

class CwsHub;

class CwsSocket final : public InstanceResource, public WsClientListener {
 public:
  CwsSocket(LuaInstance* inst, CwsHub* hub, WsClientOptions opts, int callbacksRef, int64_t id)
      : id(id),
        inst_(inst),
        hub_(hub),
        callbacksRef_(callbacksRef),
        client(*inst->host(), *this, std::move(opts)) {}
  ~CwsSocket() override;

  void onOpen() override { fire("onopen", nullptr); }
  void onMessage(int opcode, const uint8_t* data, size_t len) override {
    std::string msg(reinterpret_cast<const char*>(data), len);
    fire("onmessage", [msg = std::move(msg), opcode](lua_State* L) {
      lua_pushlstring(L, msg.data(), msg.size());
      lua_pushinteger(L, opcode);
      return 2;
    });
  }
  void onClosed(uint16_t, std::string_view, std::string_view error) override;

  const int64_t id;  // the handler number Lua sees

 private:
  LuaInstance* inst_;
  CwsHub* hub_;
  int callbacksRef_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  // Calls callbacks[name](handler, extra...) through the instance.
  void fire(const char* name, std::function<int(lua_State*)> extra);

 public:
  WsClient client;
  int selfRef = LUA_NOREF;  // keeps the userdata alive while the socket is
};

// Per instance: the eventLoop() waiter, woken by any socket's news, and the sockets by
// handler number.
class CwsHub final : public NetObject {
 public:
  using NetObject::NetObject;

  int64_t add(CwsSocket* s) {
    sockets_[s->id] = s;
    return s->id;
  }
  int64_t nextId() { return nextId_++; }
  void remove(int64_t id) { sockets_.erase(id); }
  CwsSocket* find(int64_t id) const {
    auto it = sockets_.find(id);
    return it == sockets_.end() ? nullptr : it->second;
  }

 private:
  std::unordered_map<int64_t, CwsSocket*> sockets_;
  int64_t nextId_ = 1;
};

CwsSocket::~CwsSocket() {
  *alive_ = false;
  // At instance teardown the hub may be gone already (it no longer belongs to the instance).
  if (hub_ && inst_->owns(hub_)) hub_->remove(id);
}

CwsHub* cwsHub(LuaInstance* inst) {
  return perInstance<CwsHub>(inst, "lapps.cws.hub", inst);
}

void CwsSocket::fire(const char* name, std::function<int(lua_State*)> extra) {
  if (hub_ && inst_->owns(hub_)) hub_->notify();
  lua_State* L = inst_->state();
  if (!L) return;
  lua_getfield(L, LUA_REGISTRYINDEX, "lapps.cws.fire");
  int fireRef = luaL_ref(L, LUA_REGISTRYINDEX);  // one reference per call, released below
  int cbRef = callbacksRef_;
  const int64_t handler = id;
  inst_->callRef(
      fireRef, name,
      [fireRef, cbRef, handler, name, extra = std::move(extra)](lua_State* S) {
        luaL_unref(S, LUA_REGISTRYINDEX, fireRef);
        lua_rawgeti(S, LUA_REGISTRYINDEX, cbRef);
        lua_pushstring(S, name);
        lua_pushnumber(S, lua_Number(handler));
        return 3 + (extra ? extra(S) : 0);
      },
      alive_);
}

void CwsSocket::onClosed(uint16_t, std::string_view, std::string_view error) {
  if (!error.empty()) {
    std::string e(error);
    fire("onerror", [e](lua_State* L) {
      lua_pushlstring(L, e.data(), e.size());
      return 1;
    });
  }
  fire("onclose", nullptr);
  // Release the userdata and the callbacks once onclose has run (it may be deferred).
  lua_State* L = inst_->state();
  if (!L) return;
  int sockRef = selfRef, cbRef = callbacksRef_;
  selfRef = LUA_NOREF;
  LuaInstance* inst = inst_;
  uint64_t gen = inst->generation();
  inst->host()->addTimer(0, [inst, gen, sockRef, cbRef] {
    if (gen != inst->generation() || !inst->state()) return;
    luaL_unref(inst->state(), LUA_REGISTRYINDEX, sockRef);
    luaL_unref(inst->state(), LUA_REGISTRYINDEX, cbRef);
  });
}

int cwsNew(lua_State* L) {
  LuaInstance* inst = self(L);
  int base = lua_type(L, 1) == LUA_TTABLE ? 2 : 1;  // cws:new(...) or cws.new(...)
  size_t len;
  const char* url = luaL_checklstring(L, base, &len);
  luaL_checktype(L, base + 1, LUA_TTABLE);
  WsClientOptions opts;
  std::string err;
  WsUrl parsed;
  if (!parseWsUrl(std::string_view(url, len), parsed, err) ||
      (parsed.secure && !tlsFromOptions(L, base + 2, inst, opts.tls, err))) {
    return luaL_error(L, "cws:new: %s", err.c_str());
  }
  lua_pushvalue(L, base + 1);
  int cbRef = luaL_ref(L, LUA_REGISTRYINDEX);
  CwsHub* hub = cwsHub(inst);
  auto* sock = new CwsSocket(inst, hub, std::move(opts), cbRef, hub->nextId());
  hub->add(sock);
  inst->adopt(sock);
  pushObject(L, sock, kCwsMeta);
  lua_pushvalue(L, -1);
  sock->selfRef = luaL_ref(L, LUA_REGISTRYINDEX);
  if (!sock->client.connect(std::string_view(url, len), err)) {
    luaL_unref(L, LUA_REGISTRYINDEX, sock->selfRef);
    luaL_unref(L, LUA_REGISTRYINDEX, cbRef);
    inst->drop(sock);
    return luaL_error(L, "cws:new: %s", err.c_str());
  }
  return 1;
}

// The socket at `idx`: a handler number or the object cws:new returned. Null when it is
// gone or was never one of this instance's (the caller answers false, err).
CwsSocket* cwsSocketAt(lua_State* L, int idx, LuaInstance* inst) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    const lua_Number n = lua_tonumber(L, idx);
    const int64_t id = int64_t(n);
    if (lua_Number(id) != n) return nullptr;
    lua_getfield(L, LUA_REGISTRYINDEX, "lapps.cws.hub");
    auto* hub = static_cast<CwsHub*>(lua_touserdata(L, -1));
    lua_pop(L, 1);
    return hub && inst->owns(hub) ? hub->find(id) : nullptr;
  }
  if (!luaL_testudata(L, idx, kCwsMeta)) luaL_typerror(L, idx, "cws handler");
  return checkObject<CwsSocket>(L, idx, kCwsMeta, inst);
}

// cws:send(handler, data[, opcode]), cws.send(handler, ...) or socket:send(data[, opcode])
int cwsSend(lua_State* L) {
  LuaInstance* inst = self(L);
  const int base = lua_istable(L, 1) ? 2 : 1;  // cws:send(...): the module comes first
  CwsSocket* s = cwsSocketAt(L, base, inst);
  size_t len;
  const char* data = luaL_checklstring(L, base + 1, &len);
  int op = int(luaL_optinteger(L, base + 2, 2));
  const char* why = s ? "socket is closed" : "no such socket";
  if (s && (op == 1 || op == 2) &&
      s->client.send(op, reinterpret_cast<const uint8_t*>(data), len, &why)) {
    lua_pushboolean(L, true);
    return 1;
  }
  if (op != 1 && op != 2) why = "opcode must be 1 (text) or 2 (binary)";
  lua_pushboolean(L, false);
  lua_pushfstring(L, "cws:send: %s", why);
  return 2;
}

// cws:close(handler[, code]) or socket:close([code]) -> true | false, err
int cwsClose(lua_State* L) {
  LuaInstance* inst = self(L);
  const int base = lua_istable(L, 1) ? 2 : 1;
  CwsSocket* s = cwsSocketAt(L, base, inst);
  const auto code = uint16_t(luaL_optinteger(L, base + 1, 1000));
  if (!s) {
    lua_pushboolean(L, false);
    lua_pushliteral(L, "cws:close: no such socket");
    return 2;
  }
  s->client.close(code);
  lua_pushboolean(L, true);
  return 1;
}

// cws:eventLoop(): gives the loop a turn; in a coroutine it waits (up to 100 ms) for news.
int cwsEventLoop(lua_State* L) {
  LuaInstance* inst = self(L);
  if (!inst->canSuspend(L) || inst->stopRequested()) return 0;
  return cwsHub(inst)->wait(L, 0.1, "cws:eventLoop");
}

}  // namespace

int openCws(lua_State* L) {
  LuaInstance* inst = self(L);
  if (luaL_newmetatable(L, kCwsMeta)) {
    lua_newtable(L);
    const luaL_Reg methods[] = {{"send", cwsSend}, {"close", cwsClose}, {nullptr, nullptr}};
    setClosures(L, methods, inst);
    lua_setfield(L, -2, "__index");
    lua_pushlightuserdata(L, inst);
    lua_pushcclosure(L, gcObject<CwsSocket>, 1);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  // The trampoline CwsSocket::fire calls callbacks through (chunks/cws-fire.lua).
  if (embedded::kCwsFire.load(L) != 0) lua_error(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "lapps.cws.fire");
  lua_newtable(L);
  const luaL_Reg fns[] = {{"new", cwsNew},
                          {"send", cwsSend},
                          {"close", cwsClose},
                          {"eventLoop", cwsEventLoop},
                          {nullptr, nullptr}};
  setClosures(L, fns, inst);
  return 1;
}

}  // namespace lapps::net
