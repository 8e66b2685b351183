// Outbound sockets for Lua: lapps.websocket.connect and lapps.tcp.connect (coroutine style:
// calls suspend the calling coroutine until something happens, the loop goes on), and
// LAppS's callback-style cws module. All three sit on the non-blocking clients in
// native/src/client, driven by the instance's host loop.
//
// A socket is an InstanceResource: the instance deletes it with its Lua state (even a state
// stopped mid-flight), and the userdata only points at it (checked with owns()).
#include <lua.hpp>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include "base/text.h"
#include "client/tcp-client.h"
#include "client/tls-context.h"
#include "client/ws-client.h"
#include "client/ws-url.h"
#include "lua/api-lapps.h"
#include "lua/api-net.h"
#include "lua/lua-instance.h"

namespace lapps {

namespace {

constexpr const char* kWsMeta = "lapps.websocket";
constexpr const char* kTcpMeta = "lapps.tcp";
constexpr const char* kCwsMeta = "lapps.cws";
// Inbound bytes buffered for a socket nobody reads before reading pauses.
constexpr size_t kInboxLimit = 4 << 20;

LuaInstance* self(lua_State* L) {
  return static_cast<LuaInstance*>(lua_touserdata(L, lua_upvalueindex(1)));
}

// TLS client contexts of one instance, by (verify, CA file).
class TlsContexts final : public InstanceResource {
 public:
  SSL_CTX* get(bool verify, const std::string& ca, std::string& err) {
    auto key = std::make_pair(verify, ca);
    auto it = ctx_.find(key);
    if (it != ctx_.end()) return it->second.get();
    SslCtxPtr ctx = makeClientTlsContext(TlsContextOptions{verify, ca}, err);
    if (!ctx) return nullptr;
    return (ctx_[key] = std::move(ctx)).get();
  }

 private:
  std::map<std::pair<bool, std::string>, SslCtxPtr> ctx_;
};

TlsContexts* tlsContexts(LuaInstance* inst) {
  // One per instance, kept in the registry as a light userdata owned by the instance.
  lua_State* L = inst->state();
  lua_getfield(L, LUA_REGISTRYINDEX, "lapps.tls");
  auto* t = static_cast<TlsContexts*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  if (t && inst->owns(t)) return t;
  t = new TlsContexts();
  inst->adopt(t);
  lua_pushlightuserdata(L, t);
  lua_setfield(L, LUA_REGISTRYINDEX, "lapps.tls");
  return t;
}

// A socket with at most one coroutine waiting on it.
class NetObject : public InstanceResource {
 public:
  explicit NetObject(LuaInstance* inst) : inst_(inst) {}
  ~NetObject() override { endWait(); }

  // Suspends the calling coroutine until notify() or the timeout (seconds < 0: none).
  // Returns lua_yield's result, or pushes false when the instance is stopping.
  int wait(lua_State* L, double seconds, const char* fn) {
    checkCanSuspend(L, inst_, fn);
    if (waitId_)
      return luaL_error(L, "%s: another coroutine is already waiting on this socket", fn);
    if (inst_->stopRequested()) {
      lua_pushboolean(L, false);
      return 1;
    }
    timedOut_ = false;
    waitId_ = inst_->beginWait(L);
    hookId_ = inst_->addStopHook([this] {
      hookId_ = 0;
      notify();
    });
    if (seconds >= 0) {
      timerId_ = inst_->host()->addTimer(uint64_t(seconds * 1000), [this] {
        timerId_ = 0;
        timedOut_ = true;
        notify();
      });
    }
    return lua_yield(L, 0);
  }
  bool timedOut() const { return timedOut_; }

  // Something happened: resume the waiting coroutine (it looks for itself what).
  void notify() {
    if (!waitId_) return;
    uint64_t id = waitId_;
    endWait();
    inst_->wake(id, nullptr);
  }

 protected:
  LuaInstance* inst_;

 private:
  void endWait() {
    if (hookId_) inst_->removeStopHook(hookId_);
    if (timerId_) inst_->host()->cancelTimer(timerId_);
    hookId_ = timerId_ = waitId_ = 0;
  }
  uint64_t waitId_ = 0, hookId_ = 0, timerId_ = 0;
  bool timedOut_ = false;
};

// --- lapps.websocket -------------------------------------------------------------------

class LuaWebSocket final : public NetObject, public WsClientListener {
 public:
  LuaWebSocket(LuaInstance* inst, WsClientOptions opts)
      : NetObject(inst), client(*inst->host(), *this, std::move(opts)) {}

  void onOpen() override {
    open = true;
    notify();
  }
  void onMessage(int opcode, const uint8_t* data, size_t len) override {
    inbox.emplace_back(opcode, std::string(reinterpret_cast<const char*>(data), len));
    inboxBytes += len;
    if (inboxBytes > kInboxLimit) client.pauseReading();
    notify();
  }
  void onClosed(uint16_t code, std::string_view reason, std::string_view error) override {
    closed = true;
    closeCode = code;
    std::string num = std::to_string(code);
    closeText = error.empty() ? concatText({"closed: ", num, reason.empty() ? "" : " ", reason})
                              : std::string(error);
    notify();
  }

  WsClient client;
  std::deque<std::pair<int, std::string>> inbox;
  size_t inboxBytes = 0;
  bool open = false, closed = false;
  uint16_t closeCode = 0;
  std::string closeText;
};

// A TCP client with its own buffer of received bytes.
class LuaTcp final : public NetObject, public TcpClientListener {
 public:
  explicit LuaTcp(LuaInstance* inst) : NetObject(inst), client(*inst->host(), *this) {}
  void onConnect() override {
    open = true;
    notify();
  }
  void onData(const uint8_t* data, size_t len) override {
    buffer.append(reinterpret_cast<const char*>(data), len);
    if (buffer.size() > kInboxLimit) client.pauseReading();
    notify();
  }
  void onClosed(std::string_view error) override {
    closed = true;
    closeText = error.empty() ? "closed" : std::string(error);
    notify();
  }

  TcpClient client;
  std::string buffer;
  bool open = false, closed = false;
  std::string closeText;
};

template <class T>
T* checkObject(lua_State* L, int idx, const char* meta, LuaInstance* inst) {
  auto* p = static_cast<T**>(luaL_checkudata(L, idx, meta));
  if (!*p || !inst->owns(*p)) return nullptr;
  return *p;
}

template <class T>
void pushObject(lua_State* L, T* obj, const char* meta) {
  auto** ud = static_cast<T**>(lua_newuserdata(L, sizeof(T*)));
  *ud = obj;
  luaL_getmetatable(L, meta);
  lua_setmetatable(L, -2);
}

template <class T>
int gcObject(lua_State* L) {
  LuaInstance* inst = self(L);
  auto* p = static_cast<T**>(lua_touserdata(L, 1));
  if (*p) inst->drop(*p);
  *p = nullptr;
  return 0;
}

// Reads {verify = bool, ca = "file", protocols = {...}, headers = {...}, max_message_size}.
bool tlsFromOptions(lua_State* L, int idx, LuaInstance* inst, TlsOptions& tls, std::string& err) {
  bool verify = true;
  std::string ca;
  if (lua_istable(L, idx)) {
    lua_getfield(L, idx, "verify");
    if (!lua_isnil(L, -1)) verify = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, idx, "ca");
    if (lua_isstring(L, -1)) ca = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  tls.ctx = tlsContexts(inst)->get(verify, ca, err);
  return tls.ctx != nullptr;
}

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
  if (!parseWsUrl(std::string_view(url, len), parsed, err)) {
    lua_pushnil(L);
    lua_pushlstring(L, err.data(), err.size());
    return 2;
  }
  if (parsed.secure && !tlsFromOptions(L, 2, inst, opts.tls, err)) {
    lua_pushnil(L);
    lua_pushlstring(L, err.data(), err.size());
    return 2;
  }
  auto* obj = new LuaWebSocket(inst, std::move(opts));
  inst->adopt(obj);
  if (!obj->client.connect(std::string_view(url, len), err)) {
    inst->drop(obj);
    lua_pushnil(L);
    lua_pushlstring(L, err.data(), err.size());
    return 2;
  }
  pushObject(L, obj, kWsMeta);
  return 1;
}

// __ws_state(obj) -> "connecting" | "open" | "closed", close text, queued messages
int wsState(lua_State* L) {
  auto* o = checkObject<LuaWebSocket>(L, 1, kWsMeta, self(L));
  if (!o) {
    lua_pushliteral(L, "closed");
    lua_pushliteral(L, "socket is gone");
    lua_pushinteger(L, 0);
    return 3;
  }
  lua_pushstring(L, o->closed && o->inbox.empty() ? "closed" : o->open ? "open" : "connecting");
  lua_pushlstring(L, o->closeText.data(), o->closeText.size());
  lua_pushinteger(L, lua_Integer(o->inbox.size()));
  return 3;
}

// __ws_wait(obj, seconds) -> suspends; then "timeout" | true | false (stopping)
int wsWait(lua_State* L) {
  auto* o = checkObject<LuaWebSocket>(L, 1, kWsMeta, self(L));
  if (!o) return luaL_error(L, "websocket: socket is gone");
  return o->wait(L, luaL_optnumber(L, 2, -1), "websocket");
}

int wsTimedOut(lua_State* L) {
  auto* o = checkObject<LuaWebSocket>(L, 1, kWsMeta, self(L));
  lua_pushboolean(L, o && o->timedOut());
  return 1;
}

// __ws_take(obj) -> message, opcode | nil
int wsTake(lua_State* L) {
  auto* o = checkObject<LuaWebSocket>(L, 1, kWsMeta, self(L));
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
  auto* o = checkObject<LuaWebSocket>(L, 1, kWsMeta, self(L));
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
  auto* o = checkObject<LuaWebSocket>(L, 1, kWsMeta, self(L));
  if (!o) return 0;
  size_t len = 0;
  const char* reason = luaL_optlstring(L, 3, "", &len);
  o->client.close(uint16_t(luaL_optinteger(L, 2, 1000)), std::string_view(reason, len));
  return 0;
}

// --- lapps.tcp -------------------------------------------------------------------------

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
  if (useTls && !tlsFromOptions(L, 3, inst, tls, err)) {
    lua_pushnil(L);
    lua_pushlstring(L, err.data(), err.size());
    return 2;
  }
  auto* obj = new LuaTcp(inst);
  inst->adopt(obj);
  if (!obj->client.connect(host, uint16_t(port), useTls ? &tls : nullptr, err)) {
    inst->drop(obj);
    lua_pushnil(L);
    lua_pushlstring(L, err.data(), err.size());
    return 2;
  }
  pushObject(L, obj, kTcpMeta);
  return 1;
}

// __tcp_state(obj) -> "connecting" | "open" | "closed", close text, buffered bytes
int tcpState(lua_State* L) {
  auto* o = checkObject<LuaTcp>(L, 1, kTcpMeta, self(L));
  if (!o) {
    lua_pushliteral(L, "closed");
    lua_pushliteral(L, "socket is gone");
    lua_pushinteger(L, 0);
    return 3;
  }
  lua_pushstring(L, o->closed && o->buffer.empty() ? "closed" : o->open ? "open" : "connecting");
  lua_pushlstring(L, o->closeText.data(), o->closeText.size());
  lua_pushinteger(L, lua_Integer(o->buffer.size()));
  return 3;
}

int tcpWait(lua_State* L) {
  auto* o = checkObject<LuaTcp>(L, 1, kTcpMeta, self(L));
  if (!o) return luaL_error(L, "tcp: socket is gone");
  return o->wait(L, luaL_optnumber(L, 2, -1), "tcp");
}

int tcpTimedOut(lua_State* L) {
  auto* o = checkObject<LuaTcp>(L, 1, kTcpMeta, self(L));
  lua_pushboolean(L, o && o->timedOut());
  return 1;
}

// __tcp_take(obj, max) -> up to max buffered bytes (all when max is nil) | nil
int tcpTake(lua_State* L) {
  auto* o = checkObject<LuaTcp>(L, 1, kTcpMeta, self(L));
  if (!o || o->buffer.empty()) return 0;
  size_t n = o->buffer.size();
  if (lua_isnumber(L, 2)) n = std::min(n, size_t(std::max<lua_Number>(1, lua_tonumber(L, 2))));
  lua_pushlstring(L, o->buffer.data(), n);
  o->buffer.erase(0, n);
  if (o->buffer.size() <= kInboxLimit / 2) o->client.resumeReading();
  return 1;
}

int tcpSend(lua_State* L) {
  auto* o = checkObject<LuaTcp>(L, 1, kTcpMeta, self(L));
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
  auto* o = checkObject<LuaTcp>(L, 1, kTcpMeta, self(L));
  if (o) o->client.close();
  return 0;
}

// The coroutine-style API over the raw calls above.
constexpr const char* kNet = R"lua(
local lapps, ws_meta, tcp_meta, raw = ...
local type, error, tostring = type, error, tostring
local monotonic = lapps.monotonic

local function remaining(deadline)
  if not deadline then return nil end
  local left = deadline - monotonic()
  return left > 0 and left or 0
end

-- Waits on obj until ready(obj) says it is done; nil, "timeout" after `timeout` seconds.
local function await(wait, timed_out, obj, timeout, ready)
  local deadline = timeout and (monotonic() + timeout)
  while true do
    local done, a, b = ready(obj)
    if done then return a, b end
    local woke = wait(obj, remaining(deadline) or -1)
    if woke == false then return nil, "instance stopping" end
    if timed_out(obj) then return nil, "timeout" end
  end
end

-- lapps.websocket -----------------------------------------------------------------------
local WS = {}
ws_meta.__index = WS

local function ws_opened(obj)
  local state, text = raw.ws_state(obj)
  if state == "open" then return true, obj end
  if state == "closed" then return true, nil, text end
  return false
end

local websocket = {}
function websocket.connect(url, options)
  if type(url) ~= "string" then error("lapps.websocket.connect: url must be a string", 2) end
  if options ~= nil and type(options) ~= "table" then
    error("lapps.websocket.connect: options must be a table", 2)
  end
  local obj, err = raw.ws_open(url, options)
  if not obj then return nil, err end
  local timeout = options and options.timeout or 10
  local ok, e = await(raw.ws_wait, raw.ws_timed_out, obj, timeout, ws_opened)
  if not ok then
    raw.ws_close(obj, 1000, "")
    return nil, e
  end
  return obj
end

function WS:send_text(text)
  if type(text) ~= "string" then error("websocket:send_text: string expected", 2) end
  return raw.ws_send(self, 1, text)
end
function WS:send_binary(data)
  if type(data) ~= "string" then error("websocket:send_binary: string expected", 2) end
  return raw.ws_send(self, 2, data)
end

local function ws_message(obj)
  local msg, op = raw.ws_take(obj)
  if msg then return true, msg, op end
  local state, text = raw.ws_state(obj)
  if state == "closed" then return true, nil, text end
  return false
end
-- receive([timeout]) -> message, opcode (1 text, 2 binary) | nil, err
function WS:receive(timeout)
  return await(raw.ws_wait, raw.ws_timed_out, self, timeout, ws_message)
end
function WS:close(code, reason)
  raw.ws_close(self, code or 1000, reason or "")
  return true
end
function WS:state()
  return (raw.ws_state(self))
end
lapps.websocket = websocket

-- lapps.tcp -----------------------------------------------------------------------------
local TCP = {}
tcp_meta.__index = TCP

local function tcp_opened(obj)
  local state, text = raw.tcp_state(obj)
  if state == "open" then return true, obj end
  if state == "closed" then return true, nil, text end
  return false
end

local tcp = {}
function tcp.connect(host, port, options)
  if type(host) ~= "string" then error("lapps.tcp.connect: host must be a string", 2) end
  local obj, err = raw.tcp_open(host, port, options)
  if not obj then return nil, err end
  local ok, e = await(raw.tcp_wait, raw.tcp_timed_out, obj, options and options.timeout or 10,
    tcp_opened)
  if not ok then
    raw.tcp_close(obj)
    return nil, e
  end
  return obj
end

function TCP:send(data)
  if type(data) ~= "string" then error("tcp:send: string expected", 2) end
  return raw.tcp_send(self, data)
end
-- receive([max[, timeout]]) -> bytes (at least one, at most max) | nil, err
function TCP:receive(max, timeout)
  return await(raw.tcp_wait, raw.tcp_timed_out, self, timeout, function(obj)
    local data = raw.tcp_take(obj, max)
    if data then return true, data end
    local state, text = raw.tcp_state(obj)
    if state == "closed" then return true, nil, text end
    return false
  end)
end
function TCP:close()
  raw.tcp_close(self)
  return true
end
lapps.tcp = tcp
)lua";

// --- cws (LAppS) -----------------------------------------------------------------------
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
  lua_State* L = inst->state();
  lua_getfield(L, LUA_REGISTRYINDEX, "lapps.cws.hub");
  auto* h = static_cast<CwsHub*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  if (h && inst->owns(h)) return h;
  h = new CwsHub(inst);
  inst->adopt(h);
  lua_pushlightuserdata(L, h);
  lua_setfield(L, LUA_REGISTRYINDEX, "lapps.cws.hub");
  return h;
}

// A trampoline run on the main Lua stack: (callbacks, name, handler, extra...) ->
// callbacks[name](handler, extra...) if it is a function.
constexpr const char* kCwsFire = R"lua(
local callbacks, name, handler = ...
local fn = callbacks[name]
if type(fn) == "function" then return fn(handler, select(4, ...)) end
)lua";

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

int openCws(lua_State* L) {
  LuaInstance* inst = self(L);
  if (luaL_newmetatable(L, kCwsMeta)) {
    lua_newtable(L);
    lua_pushlightuserdata(L, inst);
    lua_pushcclosure(L, cwsSend, 1);
    lua_setfield(L, -2, "send");
    lua_pushlightuserdata(L, inst);
    lua_pushcclosure(L, cwsClose, 1);
    lua_setfield(L, -2, "close");
    lua_setfield(L, -2, "__index");
    lua_pushlightuserdata(L, inst);
    lua_pushcclosure(L, gcObject<CwsSocket>, 1);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_loadbuffer(L, kCwsFire, std::char_traits<char>::length(kCwsFire), "=[lapps cws]") != 0) {
    lua_error(L);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "lapps.cws.fire");
  lua_newtable(L);
  const luaL_Reg fns[] = {{"new", cwsNew},
                          {"send", cwsSend},
                          {"close", cwsClose},
                          {"eventLoop", cwsEventLoop},
                          {nullptr, nullptr}};
  for (const luaL_Reg* f = fns; f->name; ++f) {
    lua_pushlightuserdata(L, inst);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -2, f->name);
  }
  return 1;
}

}  // namespace

void registerNetApi(lua_State* L, LuaInstance* instance) {
  // lapps root on top.
  const struct {
    const char* meta;
    lua_CFunction gc;
  } metas[] = {{kWsMeta, gcObject<LuaWebSocket>}, {kTcpMeta, gcObject<LuaTcp>}};
  if (luaL_loadbuffer(L, kNet, std::char_traits<char>::length(kNet), "=[lapps net]") != 0) {
    lua_error(L);
  }
  lua_pushvalue(L, -2);
  for (const auto& m : metas) {
    luaL_newmetatable(L, m.meta);
    lua_pushlightuserdata(L, instance);
    lua_pushcclosure(L, m.gc, 1);
    lua_setfield(L, -2, "__gc");
  }
  lua_newtable(L);
  const luaL_Reg raw[] = {{"ws_open", wsOpen},
                          {"ws_state", wsState},
                          {"ws_wait", wsWait},
                          {"ws_timed_out", wsTimedOut},
                          {"ws_take", wsTake},
                          {"ws_send", wsSend},
                          {"ws_close", wsClose},
                          {"tcp_open", tcpOpen},
                          {"tcp_state", tcpState},
                          {"tcp_wait", tcpWait},
                          {"tcp_timed_out", tcpTimedOut},
                          {"tcp_take", tcpTake},
                          {"tcp_send", tcpSend},
                          {"tcp_close", tcpClose},
                          {nullptr, nullptr}};
  for (const luaL_Reg* f = raw; f->name; ++f) {
    lua_pushlightuserdata(L, instance);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -2, f->name);
  }
  lua_call(L, 4, 0);
  // cws in package.preload (LAppS: listed in `preload`).
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushlightuserdata(L, instance);
  lua_pushcclosure(L, openCws, 1);
  lua_setfield(L, -2, "cws");
  lua_pop(L, 2);
}

}  // namespace lapps
