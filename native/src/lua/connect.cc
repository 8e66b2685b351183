#include "lua/connect.h"

#include <lua.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>

#include "base/text.h"
#include "core/handle.h"
#include "core/peer-text.h"
#include "core/service-host.h"
#include "embedded-lua.h"
#include "lua/lua-instance.h"
#include "protocol/http-fields.h"

namespace lapps {

namespace {

// A user value is copied out of Lua and kept with the connection for its life.
constexpr size_t kMaxUserBytes = 4096;
// The refusal's body: a short text, not a page.
constexpr size_t kMaxReasonBytes = 1024;

void setString(lua_State* L, const char* key, std::string_view v) {
  lua_pushlstring(L, v.data(), v.size());
  lua_setfield(L, -2, key);
}

void setStringIfAny(lua_State* L, const char* key, std::string_view v) {
  if (!v.empty()) setString(L, key, v);
}

// args[key] = value; a repeated key becomes an array of its values, in order.
void addArg(lua_State* L, std::string_view key, std::string_view value) {
  lua_pushlstring(L, key.data(), key.size());
  lua_rawget(L, -2);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushlstring(L, key.data(), key.size());
    lua_pushlstring(L, value.data(), value.size());
    lua_rawset(L, -3);
  } else if (lua_isstring(L, -1)) {
    lua_createtable(L, 2, 0);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, value.data(), value.size());
    lua_rawseti(L, -2, 2);
    lua_pushlstring(L, key.data(), key.size());
    lua_insert(L, -2);
    lua_rawset(L, -3);
  } else {
    lua_pushlstring(L, value.data(), value.size());
    lua_rawseti(L, -2, int(lua_objlen(L, -2)) + 1);
    lua_pop(L, 1);
  }
}

// false[, status[, reason]] at 3, 4, 5.
bool readRefusal(lua_State* L, ConnectVerdict& v, std::string& why) {
  int status = 403;
  if (!lua_isnoneornil(L, 4)) {
    double s = lua_type(L, 4) == LUA_TNUMBER ? lua_tonumber(L, 4) : 0;
    if (!(s >= 400 && s <= 599) || std::floor(s) != s) {
      why = "a refusal's status must be an integer from 400 to 599";
      return false;
    }
    status = int(s);
  }
  std::string reason;
  if (!lua_isnoneornil(L, 5)) {
    if (lua_type(L, 5) != LUA_TSTRING) {
      why = std::string("a refusal's reason must be a string, not a ") + luaL_typename(L, 5);
      return false;
    }
    size_t len = 0;
    const char* s = lua_tolstring(L, 5, &len);
    reason.assign(s, std::min(len, kMaxReasonBytes));
  }
  v = ConnectVerdict::refuse(status, std::move(reason));
  return true;
}

int connectAnswer(lua_State* L) {
  auto* self = static_cast<LuaInstance*>(lua_touserdata(L, lua_upvalueindex(1)));
  uint64_t handle = 0;
  Handle::fromNumber(lua_tonumber(L, 1), handle);
  ConnectVerdict v;
  auto wrong = [&](std::string why) {
    self->log(LogLevel::Error, "onConnect: " + why);
    v = ConnectVerdict::refuse(500, "internal error");
  };
  if (!lua_toboolean(L, 2)) {
    // Its error, with the traceback xpcall's handler added.
    size_t len = 0;
    const char* msg = lua_type(L, 3) == LUA_TSTRING ? lua_tolstring(L, 3, &len) : nullptr;
    wrong(msg ? std::string(msg, len) : std::string("(error object is not a string)"));
  } else if (lua_isnoneornil(L, 3) || (lua_type(L, 3) == LUA_TBOOLEAN && lua_toboolean(L, 3))) {
    // Accepted, with an optional user value.
    switch (lua_type(L, 4)) {
      case LUA_TNONE:
      case LUA_TNIL:
        break;
      case LUA_TNUMBER:
        v.user.kind = UserValue::Kind::Number;
        v.user.number = lua_tonumber(L, 4);
        break;
      case LUA_TSTRING: {
        size_t len = 0;
        const char* s = lua_tolstring(L, 4, &len);
        if (len > kMaxUserBytes) {
          wrong("the user value is " + std::to_string(len) + " bytes, at most " +
                std::to_string(kMaxUserBytes) + " may be kept");
          break;
        }
        v.user.kind = UserValue::Kind::String;
        v.user.text.assign(s, len);
        break;
      }
      default:
        wrong(std::string("the user value must be a string or a number, not a ") +
              luaL_typename(L, 4));
        break;
    }
  } else if (lua_type(L, 3) == LUA_TBOOLEAN) {
    std::string why;
    if (!readRefusal(L, v, why)) wrong(why);
  } else {
    wrong(std::string("it must return true [, user] or false [, status [, reason]], not a ") +
          luaL_typename(L, 3));
  }
  self->connectAnswered(handle, std::move(v));
  return 0;
}

int wsInfo(lua_State* L) {
  auto* self = static_cast<LuaInstance*>(lua_touserdata(L, lua_upvalueindex(1)));
  int arg = 1;
  if (lua_istable(L, 1)) arg = 2;  // ws:info(handler)
  uint64_t handle = 0;
  if (lua_type(L, arg) != LUA_TNUMBER || !Handle::fromNumber(lua_tonumber(L, arg), handle)) {
    lua_pushnil(L);
    lua_pushliteral(L, "ws:info: handler must be a connection handle (a number)");
    return 2;
  }
  ServiceHost* host = self->serviceHost();
  std::shared_ptr<const ConnInfo> info = host ? host->info(self->service(), handle) : nullptr;
  if (!info) {
    lua_pushnil(L);
    lua_pushliteral(L, "no such connection");
    return 2;
  }
  lua_createtable(L, 0, 6);
  char ip[kPeerIpBytes];
  setString(L, "ip", peerIp(info->peer, ip));
  lua_pushinteger(L, peerPort(info->peer));
  lua_setfield(L, -2, "port");
  setString(L, "path", info->path());
  setString(L, "query", info->query());
  if (info->user.kind == UserValue::Kind::String) {
    setString(L, "user", info->user.text);
  } else if (info->user.kind == UserValue::Kind::Number) {
    lua_pushnumber(L, info->user.number);
    lua_setfield(L, -2, "user");
  }
  setString(L, "service", self->settings().name);
  return 1;
}

// request.headers[name]: the field looked up in the request head on first read (any case;
// a repeated field's values joined with ", " in order) and kept in the table; nil if the
// request has none. Upvalue 1: the weak table that maps each headers table to its head.
int findHeader(lua_State* L) {
  size_t nameLen = 0;
  const char* name = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &nameLen) : nullptr;
  if (!name) return 0;
  lua_pushvalue(L, 1);
  lua_rawget(L, lua_upvalueindex(1));
  size_t len = 0;
  const char* head = lua_tolstring(L, -1, &len);
  if (!head) return 0;
  std::string value;
  if (!joinHeaderValues(std::string_view(head, len), std::string_view(name, nameLen), value)) {
    return 0;
  }
  lua_pushvalue(L, 2);
  lua_pushlstring(L, value.data(), value.size());
  lua_pushvalue(L, -1);
  lua_insert(L, -3);
  lua_rawset(L, 1);
  return 1;
}

// request.headers, made on first read: an empty table that looks fields up on demand
// (findHeader). Upvalues: its metatable, and the weak table of heads.
int buildHeaders(lua_State* L) {
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(2));  // 2: the heads
  lua_newtable(L);                        // 3: the headers
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, 3);
  lua_pushvalue(L, 3);
  lua_pushvalue(L, 1);
  lua_rawset(L, 2);
  return 1;
}

// request.args, made on first read from the query (argument 2).
int buildArgs(lua_State* L) {
  size_t len = 0;
  const char* query = lua_tolstring(L, 2, &len);
  lua_newtable(L);
  if (query) {
    forEachQueryArg(std::string_view(query, len),
                    [L](std::string_view k, std::string_view v) { addArg(L, k, v); });
  }
  return 1;
}

// request.cookies, made on first read from each Cookie field line of the head (joined ones
// would mix ", " into values); the first of a repeated name wins (RFC 6265 §5.4 sends the
// most specific first).
int buildCookies(lua_State* L) {
  size_t len = 0;
  const char* head = lua_tolstring(L, 1, &len);
  lua_newtable(L);
  if (!head) return 1;
  forEachHeaderField(std::string_view(head, len),
                     [L](std::string_view name, std::string_view value) {
                       if (!equalsIgnoreCase(name, "cookie")) return;
                       forEachCookie(value, [L](std::string_view n, std::string_view v) {
                         lua_pushlstring(L, n.data(), n.size());
                         lua_rawget(L, -2);
                         bool seen = !lua_isnil(L, -1);
                         lua_pop(L, 1);
                         if (seen) return;
                         lua_pushlstring(L, n.data(), n.size());
                         lua_pushlstring(L, v.data(), v.size());
                         lua_rawset(L, -3);
                       });
                     });
  return 1;
}

// __index of a request: headers, args and cookies are made on first read (from the head
// and the query the request holds) and kept in it; any other missing key is nil.
// Upvalues: the makers of headers, args and cookies.
int lazyField(lua_State* L) {
  size_t len = 0;
  const char* key = lua_tolstring(L, 2, &len);
  const std::string_view k = key ? std::string_view(key, len) : std::string_view();
  const int make = k == "headers"   ? lua_upvalueindex(1)
                   : k == "args"    ? lua_upvalueindex(2)
                   : k == "cookies" ? lua_upvalueindex(3)
                                    : 0;
  if (!make) return 0;
  lua_settop(L, 2);
  lua_pushvalue(L, make);
  lua_getfield(L, 1, "head");
  lua_getfield(L, 1, "query");
  lua_call(L, 2, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

// What the connect coroutine makes onConnect's `request` of: method, target, path, query,
// origin, subprotocol, ip, port, the request head (for the fields made on first read) and
// tls.
int pushConnectArgs(lua_State* L, const ConnectRequest& req) {
  auto push = [L](std::string_view v) { lua_pushlstring(L, v.data(), v.size()); };
  auto pushOrNil = [&](std::string_view v) {
    if (v.empty()) {
      lua_pushnil(L);
    } else {
      push(v);
    }
  };
  push(req.method);
  push(req.target);
  push(req.path);
  push(req.query);
  pushOrNil(req.origin);
  pushOrNil(req.subprotocol);
  char ip[kPeerIpBytes];
  push(peerIp(req.peer, ip));
  lua_pushinteger(L, peerPort(req.peer));
  push(req.head);
  if (req.tls) {
    const TlsInfo& t = *req.tls;
    lua_createtable(L, 0, 6);
    setString(L, "version", t.version);
    setString(L, "cipher", t.cipher);
    setStringIfAny(L, "sni", t.sni);
    if (t.clientCert) {
      setString(L, "subject", t.subject);
      setString(L, "issuer", t.issuer);
      setString(L, "fingerprint", t.fingerprint);
    }
  } else {
    lua_pushnil(L);
  }
  return 10;
}

// unpack(req) in the connect coroutine: req is the ConnectRequest the instance resumed it
// with, alive for that resume.
int unpackRequest(lua_State* L) {
  const auto* req = static_cast<const ConnectRequest*>(lua_touserdata(L, 1));
  if (!req) return 0;
  return pushConnectArgs(L, *req);
}

}  // namespace

void pushConnectWrapper(lua_State* L, LuaInstance* instance, int tracebackIndex, void* done) {
  if (embedded::kConnect.load(L) != 0) lua_error(L);
  lua_pushlightuserdata(L, instance);
  lua_pushcclosure(L, connectAnswer, 1);
  lua_pushvalue(L, tracebackIndex);
  lua_pushlightuserdata(L, done);
  // The makers of the fields read on demand: headers (with the metatable and the weak
  // table of heads its tables share), args, cookies.
  lua_newtable(L);  // heads, weak-keyed
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_createtable(L, 0, 1);  // the headers' metatable
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, findHeader, 1);
  lua_setfield(L, -2, "__index");
  lua_insert(L, -2);
  lua_pushcclosure(L, buildHeaders, 2);
  lua_pushcfunction(L, buildArgs);
  lua_pushcfunction(L, buildCookies);
  lua_pushcclosure(L, lazyField, 3);
  lua_pushcfunction(L, unpackRequest);
  lua_call(L, 5, 1);
}

void addWsInfo(lua_State* L, LuaInstance* instance) {
  lua_pushlightuserdata(L, instance);
  lua_pushcclosure(L, wsInfo, 1);
  lua_setfield(L, -2, "info");
}

}  // namespace lapps
