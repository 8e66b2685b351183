// lapps.http.request (coroutine style: it suspends the calling coroutine until the response
// is in, the loop goes on), on HttpConnection (client/http-connection.h), driven by the
// instance's host loop. chunks/net.lua is its Lua half: it checks the arguments, so these
// raw calls get valid ones.
//
// Keep-alive: a connection whose response left it reusable goes to the instance's idle
// pool, keyed by scheme, host, port and TLS context, and the next request to the same key
// takes it. The pool is small and bounded; an idle connection is closed after a while, when
// the server closes it, or when it speaks unasked.
#include <lua.hpp>

#include <algorithm>
#include <list>
#include <memory>
#include <string>
#include <utility>

#include "base/text.h"
#include "client/http-connection.h"
#include "client/ws-url.h"
#include "lua/api-net-common.h"

namespace lapps::net {

namespace {

constexpr size_t kIdlePerKey = 4;    // idle connections kept per (scheme, host, port, TLS)
constexpr size_t kIdleTotal = 16;    // and per instance
constexpr uint64_t kIdleMs = 30000;  // an idle connection is closed after this long

class HttpPool final : public InstanceResource, public HttpConnectionListener {
 public:
  explicit HttpPool(LuaInstance* inst) : inst_(inst) {}
  ~HttpPool() override {
    for (Idle& i : idle_) inst_->host()->cancelTimer(i.timer);
  }

  // The most recently parked connection for key, or null.
  std::unique_ptr<HttpConnection> take(const std::string& key) {
    for (auto it = idle_.begin(); it != idle_.end(); ++it) {
      if (it->key != key) continue;
      std::unique_ptr<HttpConnection> c = std::move(it->conn);
      inst_->host()->cancelTimer(it->timer);
      idle_.erase(it);
      c->setListener(nullptr);
      return c;
    }
    return nullptr;
  }

  void park(const std::string& key, std::unique_ptr<HttpConnection> conn) {
    size_t sameKey = 0;
    for (const Idle& i : idle_) sameKey += i.key == key;
    // Newest first; the oldest of the key (or of all) make room.
    if (sameKey >= kIdlePerKey) {
      for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
        if (it->key == key) {
          erase(std::next(it).base());
          break;
        }
      }
    } else if (idle_.size() >= kIdleTotal) {
      erase(std::prev(idle_.end()));
    }
    conn->setListener(this);
    const uint64_t id = ++lastId_;
    const uint64_t timer = inst_->host()->addTimer(kIdleMs, [this, id] {
      for (auto it = idle_.begin(); it != idle_.end(); ++it) {
        if (it->id != id) continue;
        it->timer = 0;
        erase(it);
        return;
      }
    });
    idle_.push_front(Idle{key, std::move(conn), id, timer});
  }

  size_t size() const { return idle_.size(); }

  // An idle connection ended or spoke unasked: it goes.
  void onFailure(HttpConnection& conn, std::string_view) override {
    for (auto it = idle_.begin(); it != idle_.end(); ++it) {
      if (it->conn.get() == &conn) {
        erase(it);
        return;
      }
    }
  }
  void onResponse(HttpConnection&) override {}  // nothing is asked of an idle connection

 private:
  struct Idle {
    std::string key;
    std::unique_ptr<HttpConnection> conn;
    uint64_t id, timer;
  };
  void erase(std::list<Idle>::iterator it) {
    if (it->timer) inst_->host()->cancelTimer(it->timer);
    idle_.erase(it);
  }

  LuaInstance* inst_;
  std::list<Idle> idle_;
  uint64_t lastId_ = 0;
};

// Methods a client may send again when a reused connection closed before answering
// (RFC 9110 §9.2.2): the server cannot have acted on them twice.
bool idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "PUT" || m == "DELETE" || m == "TRACE";
}

// One request: its connection while in flight, then the response until Lua takes it.
class LuaHttp final : public NetSocket, public HttpConnectionListener {
 public:
  static constexpr const char* kMeta = "lapps.http";
  static constexpr const char* kName = "lapps.http.request";

  using NetSocket::NetSocket;

  size_t queued() const { return open ? 1 : 0; }

  // Takes a pooled connection for the key, or starts a new one, and sends the request.
  bool start(std::string& err) {
    if (auto c = perInstance<HttpPool>(inst_, "lapps.http.pool", inst_)->take(key)) {
      conn = std::move(c);
      reused = true;
    } else {
      conn = std::make_unique<HttpConnection>(*inst_->host());
      reused = false;
      if (!conn->connect(host, port, secure ? &tls : nullptr, err)) {
        conn.reset();
        return false;
      }
    }
    conn->request(request, head, limits, this);
    return true;
  }

  void onResponse(HttpConnection& c) override {
    HttpResponseParser& r = c.response();
    status = r.statusCode();
    headers = r.headers();
    body.swap(r.body());
    if (c.reusable() && !closeAfter) {
      perInstance<HttpPool>(inst_, "lapps.http.pool", inst_)->park(key, std::move(conn));
    } else {
      conn.reset();  // allowed from its own callback
    }
    opened();
  }

  void onFailure(HttpConnection& c, std::string_view error) override {
    const std::string e(error);  // may point into the connection
    // A kept-alive connection the server closed just as it was reused: try once on a new one.
    if (reused && !retried && !c.response().started() && idempotent(method)) {
      retried = true;
      conn.reset();
      std::string err;
      if (!start(err)) closedWith(err);
      return;
    }
    conn.reset();
    closedWith(e);
  }

  std::string key, host, method, request;
  uint16_t port = 0;
  bool secure = false, head = false, closeAfter = false, reused = false, retried = false;
  TlsOptions tls;
  HttpResponseLimits limits;
  std::unique_ptr<HttpConnection> conn;

  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// __http_open(url, method, headers (flat array: name, value, ...), body | nil, max_body,
// options) -> obj | nil, err. The arguments are checked by net.lua.
int httpOpen(lua_State* L) {
  LuaInstance* inst = self(L);
  size_t urlLen;
  const char* url = luaL_checklstring(L, 1, &urlLen);
  const char* method = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  size_t bodyLen = 0;
  const char* body = lua_isstring(L, 4) ? lua_tolstring(L, 4, &bodyLen) : nullptr;
  const lua_Number maxBody = luaL_optnumber(L, 5, -1);

  auto* obj = new LuaHttp(inst);
  inst->adopt(obj);
  std::string err;
  WsUrl u;
  if (!parseHttpUrl(std::string_view(url, urlLen), u, err) ||
      (u.secure && !tlsFromOptions(L, 6, inst, obj->tls, err))) {
    inst->drop(obj);
    return luautil::nilError(L, err);
  }
  obj->host = u.host;
  obj->port = u.port;
  obj->secure = u.secure;
  obj->method = method;
  obj->head = obj->method == "HEAD";
  if (maxBody >= 0) obj->limits.maxBodyBytes = size_t(std::min<lua_Number>(maxBody, 1e15));
  // The TLS context stands for (verify, CA file): connections made under other trust
  // settings are never shared.
  char ctxId[32];
  snprintf(ctxId, sizeof ctxId, "%p", static_cast<void*>(obj->tls.ctx));
  obj->key = concatText({u.secure ? "https://" : "http://", u.host, " ", std::to_string(u.port),
                         " ", u.secure ? ctxId : ""});

  std::string& r = obj->request;
  r = concatText({method, " ", u.path, " HTTP/1.1\r\n"});
  bool hasHost = false, hasAgent = false;
  const int n = int(lua_objlen(L, 3));
  for (int i = 1; i + 1 <= n; i += 2) {
    lua_rawgeti(L, 3, i);
    lua_rawgeti(L, 3, i + 1);
    const std::string_view name = lua_tostring(L, -2);
    const std::string_view value = lua_tostring(L, -1);
    hasHost = hasHost || equalsIgnoreCase(name, "host");
    hasAgent = hasAgent || equalsIgnoreCase(name, "user-agent");
    if (equalsIgnoreCase(name, "connection")) {
      for (size_t k = 0; k + 5 <= value.size(); ++k)
        obj->closeAfter = obj->closeAfter || equalsIgnoreCase(value.substr(k, 5), "close");
    }
    r.append(name).append(": ").append(value).append("\r\n");
    lua_pop(L, 2);
  }
  if (!hasHost) r.append("Host: ").append(u.hostHeader).append("\r\n");
  if (!hasAgent) r.append("User-Agent: lapps\r\n");
  if (body || obj->method == "POST" || obj->method == "PUT" || obj->method == "PATCH")
    r.append("Content-Length: ").append(std::to_string(bodyLen)).append("\r\n");
  r.append("\r\n");
  if (body) r.append(body, bodyLen);

  if (!obj->start(err)) {
    inst->drop(obj);
    return luautil::nilError(L, err);
  }
  pushObject(L, obj, LuaHttp::kMeta);
  return 1;
}

// __http_result(obj) -> status, headers, body (once the state is "open")
int httpResult(lua_State* L) {
  auto* o = checkObject<LuaHttp>(L, 1, LuaHttp::kMeta, self(L));
  if (!o || !o->open) return 0;
  lua_pushinteger(L, o->status);
  lua_createtable(L, 0, int(o->headers.size()));
  for (const auto& [name, value] : o->headers) {
    lua_pushlstring(L, name.data(), name.size());
    lua_pushlstring(L, value.data(), value.size());
    lua_rawset(L, -3);
  }
  lua_pushlstring(L, o->body.data(), o->body.size());
  std::string().swap(o->body);
  o->open = false;
  o->closedWith("taken");
  return 3;
}

// __http_close(obj): abandons the request (its connection is closed, never pooled).
int httpClose(lua_State* L) {
  auto* o = checkObject<LuaHttp>(L, 1, LuaHttp::kMeta, self(L));
  if (o) o->conn.reset();
  return 0;
}

// __http_idle() -> connections in the instance's keep-alive pool (for tests and stats)
int httpIdle(lua_State* L) {
  lua_pushinteger(L,
                  lua_Integer(perInstance<HttpPool>(self(L), "lapps.http.pool", self(L))->size()));
  return 1;
}

const luaL_Reg kRaw[] = {{"open", httpOpen},
                         {"result", httpResult},
                         {"close", httpClose},
                         {"idle", httpIdle},
                         {nullptr, nullptr}};

}  // namespace

const NetApi kHttpApi = socketApi<LuaHttp>("http", kRaw);

}  // namespace lapps::net
