#include "lua/lapps-protocol.h"

#include <lua.hpp>

#include <cmath>
#include <string>

#include "codec/cbor-writer.h"
#include "core/handle.h"
#include "core/service-host.h"
#include "lua/lua-instance.h"
#include "lua/lua-value.h"

namespace lapps {

namespace {

LuaInstance* self(lua_State* L) {
  return static_cast<LuaInstance*>(lua_touserdata(L, lua_upvalueindex(1)));
}

// An integer field: a Lua number holding an integer, or 64-bit integer cdata.
bool readInteger(lua_State* L, int idx, int64_t& out) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    double d = lua_tonumber(L, idx);
    if (!(d >= -9.2e18 && d <= 9.2e18) || std::floor(d) != d) return false;
    out = int64_t(d);
    return true;
  }
  uint64_t bits;
  int kind = readInt64Cdata(L, idx, bits);
  if (kind == 1 || (kind == 2 && bits <= uint64_t(INT64_MAX))) {
    out = int64_t(bits);
    return true;
  }
  return false;
}

// Reads the `id` of the table at idx: true and `id` set (kind kNone when absent), or false
// when it is there but neither an integer nor a string.
bool readId(lua_State* L, int idx, LappsConnection::Pending& id) {
  lua_getfield(L, idx, "id");
  bool ok = true;
  id = {};
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t len;
    const char* s = lua_tolstring(L, -1, &len);
    id.kind = LappsConnection::Pending::kText;
    id.text.assign(s, len);
  } else if (!lua_isnil(L, -1)) {
    ok = readInteger(L, -1, id.number);
    if (ok) id.kind = LappsConnection::Pending::kInt;
  }
  lua_pop(L, 1);
  return ok;
}

void writeId(CborWriter& w, const LappsConnection::Pending& id) {
  w.writeText("id", 2);
  if (id.kind == LappsConnection::Pending::kInt) {
    w.writeInt(id.number);
  } else {
    w.writeText(id.text.data(), id.text.size());
  }
}

void pushId(lua_State* L, const LappsConnection::Pending& id) {
  if (id.kind == LappsConnection::Pending::kInt) {
    pushInt64(L, id.number);
  } else {
    lua_pushlstring(L, id.text.data(), id.text.size());
  }
}

bool sameId(const LappsConnection::Pending& a, const LappsConnection::Pending& b) {
  return a.kind == b.kind &&
         (a.kind == LappsConnection::Pending::kInt ? a.number == b.number : a.text == b.text);
}

// Answers a message the service never sees: {cid = 0, status = 0, error = {code, message}}
// (with the request's id when it had a readable one). Too many from one connection and it
// is closed with 1008.
void reject(LuaInstance* inst, uint64_t handle, int code, const std::string& message,
            const LappsConnection::Pending* id) {
  std::string out;
  CborWriter w(out);
  bool withId = id && id->kind != LappsConnection::Pending::kNone;
  w.writeMapHeader(withId ? 4 : 3);
  w.writeText("cid", 3);
  w.writeUnsigned(0);
  w.writeText("status", 6);
  w.writeUnsigned(0);
  w.writeText("error", 5);
  w.writeMapHeader(2);
  w.writeText("code", 4);
  w.writeInt(code);
  w.writeText("message", 7);
  w.writeText(message.data(), message.size());
  if (withId) writeId(w, *id);
  ServiceHost* host = inst->serviceHost();
  if (host->send(inst->service(), handle, Opcode::Binary,
                 reinterpret_cast<const uint8_t*>(out.data()),
                 out.size()) == SendStatus::NoConnection) {
    return;  // not a connection of this service: no state is kept for it
  }
  LappsConnection& c = inst->lappsConnection(handle);
  if (++c.invalid > kMaxInvalidMessages) {
    inst->log(LogLevel::Warn, "closing a connection after " + std::to_string(c.invalid) +
                                  " invalid LAppS messages");
    host->close(inst->service(), handle, 1008, "too many invalid messages");
  }
}

// classify(handler, bytes) -> msg_type, message | nothing (answered with an error)
int classify(lua_State* L) {
  LuaInstance* inst = self(L);
  uint64_t handle;
  // Called by the dispatcher for the connection being served; any other handle (the
  // registry is reachable without the sandbox) is refused before any state is kept.
  if (!Handle::fromNumber(lua_tonumber(L, 1), handle) || handle != inst->batchHandle()) {
    return 0;
  }
  size_t len;
  const char* data = lua_tolstring(L, 2, &len);
  std::string err;
  lua_settop(L, 2);
  if (!pushCbor(L, reinterpret_cast<const uint8_t*>(data), len, err)) {
    reject(inst, handle, kParseError, "parse error: " + err, nullptr);
    return 0;
  }
  const int msg = 3;
  if (valueKind(L, msg) != ValueKind::kObject) {
    reject(inst, handle, kInvalidRequest, "invalid request: a message must be a CBOR map", nullptr);
    return 0;
  }
  LappsConnection::Pending id;
  if (!readId(L, msg, id)) {
    reject(inst, handle, kInvalidRequest, "invalid request: id must be an integer or a string",
           nullptr);
    return 0;
  }
  auto invalid = [&](const char* why) {
    reject(inst, handle, kInvalidRequest, std::string("invalid request: ") + why, &id);
    return 0;
  };
  lua_getfield(L, msg, "lapps");
  int64_t version;
  bool versionOk = readInteger(L, -1, version) && version == 1;
  lua_pop(L, 1);
  if (!versionOk) return invalid("lapps must be 1");
  lua_getfield(L, msg, "method");
  size_t mlen = 0;
  const char* method = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &mlen) : nullptr;
  bool methodOk = method && mlen > 0 && method[0] != '_' &&
                  std::string_view(method, mlen).find('.') == std::string_view::npos;
  lua_pop(L, 1);
  if (!methodOk) {
    return invalid("method must be a non-empty string without '.' that does not start with '_'");
  }
  lua_getfield(L, msg, "params");
  bool hasParams = !lua_isnil(L, -1);
  bool paramsOk = !hasParams || valueKind(L, -1) == ValueKind::kArray;
  lua_pop(L, 1);
  if (!paramsOk) return invalid("params must be an array");
  lua_getfield(L, msg, "cid");
  bool notification = !lua_isnil(L, -1);
  int64_t cid = 0;
  bool cidOk = !notification || (readInteger(L, -1, cid) && cid >= 0);
  lua_pop(L, 1);
  if (!cidOk) return invalid("cid must be a non-negative integer");
  if (notification && id.kind != LappsConnection::Pending::kNone) {
    return invalid("a notification (with cid) takes no id");
  }
  if (!notification) {
    LappsConnection& conn = inst->lappsConnection(handle);
    id.seq = ++conn.lastSeq;
    conn.pending.push_back(std::move(id));
  }
  lua_pushinteger(L, notification ? (hasParams ? kNotificationWithParams : kNotification)
                                  : (hasParams ? kRequestWithParams : kRequest));
  lua_pushvalue(L, msg);
  return 2;
}

// Checks the outbound object at idx; "" when it is valid. cid is set.
std::string checkOutbound(lua_State* L, int idx, int64_t& cid) {
  if (valueKind(L, idx) != ValueKind::kObject) return "the message must be a table (a map)";
  lua_getfield(L, idx, "cid");
  bool cidOk = readInteger(L, -1, cid) && cid >= 0;
  lua_pop(L, 1);
  if (!cidOk) return "cid must be a non-negative integer (0: a response, > 0: an OON)";
  lua_getfield(L, idx, "status");
  lua_getfield(L, idx, "result");
  lua_getfield(L, idx, "error");
  lua_getfield(L, idx, "message");
  const int status = -4, result = -3, error = -2, message = -1;
  std::string why;
  if (cid != 0) {
    if (!lua_isnil(L, status) || !lua_isnil(L, result) || !lua_isnil(L, error)) {
      why = "an OON (cid > 0) carries message, not status/result/error";
    } else if (valueKind(L, message) != ValueKind::kArray) {
      why = "an OON needs message = [ ... ] (an array)";
    }
  } else {
    int64_t st = -1;
    readInteger(L, status, st);
    if (st == 1) {
      if (lua_isnil(L, result)) why = "a response with status 1 needs result";
      if (!lua_isnil(L, error)) why = "a response with status 1 carries no error";
    } else if (st == 0) {
      int64_t code;
      bool ok = valueKind(L, error) == ValueKind::kObject;
      if (ok) {
        lua_getfield(L, error, "code");
        lua_getfield(L, error - 1, "message");
        ok = readInteger(L, -2, code) && lua_type(L, -1) == LUA_TSTRING;
        lua_pop(L, 2);
      }
      if (!ok)
        why = "a response with status 0 needs error = {code = <integer>, message = <string>}";
    } else {
      why = "a response (cid 0) needs status 1 (result) or 0 (error)";
    }
  }
  lua_pop(L, 4);
  return why;
}

// send(handler, object) -> true | false, err: a response or an OON to one connection.
int sendObject(lua_State* L) {
  LuaInstance* inst = self(L);
  if (inst->settings().protocol != Protocol::Lapps) {
    lua_pushboolean(L, false);
    lua_pushliteral(L,
                    "ws:send: tables are for LAppS protocol services (\"protocol\": \"lapps\"); "
                    "a raw service sends strings with an opcode");
    return 2;
  }
  uint64_t handle;
  // Checked first: no protocol state is kept for a handle that is not this service's.
  if (!Handle::fromNumber(lua_tonumber(L, 1), handle) ||
      !inst->serviceHost()->reaches(inst->service(), handle)) {
    lua_pushboolean(L, false);
    lua_pushstring(L, sendStatusMessage(SendStatus::NoConnection));
    return 2;
  }
  int64_t cid = 0;
  std::string why = checkOutbound(L, 2, cid);
  auto fail = [&](const std::string& what) {
    lua_pushboolean(L, false);
    std::string m = "ws:send: " + what;
    lua_pushlstring(L, m.data(), m.size());
    return 2;
  };
  if (!why.empty()) return fail(why);
  LappsConnection::Pending attach;
  bool restoreId = false;
  if (cid == 0) {
    // A response answers one open request: the one named by its id, else the oldest.
    LappsConnection& conn = inst->lappsConnection(handle);
    LappsConnection::Pending explicitId;
    if (!readId(L, 2, explicitId)) return fail("id must be an integer or a string");
    if (explicitId.kind != LappsConnection::Pending::kNone) {
      auto it = conn.pending.begin();
      while (it != conn.pending.end() && !sameId(*it, explicitId)) ++it;
      if (it == conn.pending.end()) return fail("no open request with this id");
      conn.pending.erase(it);
    } else {
      if (conn.pending.empty()) return fail("no open request to answer (cid 0 is for responses)");
      // The request being handled (the latest one given to onMessage) if it is still open:
      // another, answered later with an explicit id, must not take its answer.
      auto it = conn.pending.end() - 1;
      if (it->seq != conn.lastSeq) it = conn.pending.begin();
      attach = std::move(*it);
      conn.pending.erase(it);
      restoreId = attach.kind != LappsConnection::Pending::kNone;
    }
  }
  if (restoreId) {
    // The request had an id: its response carries it. Set for the encoding only, so a
    // template the service reuses is left as it was.
    lua_pushliteral(L, "id");
    pushId(L, attach);
    lua_rawset(L, 2);
  }
  std::string out, err;
  bool ok = encodeCbor(L, 2, out, err);
  if (restoreId) {
    lua_pushliteral(L, "id");
    lua_pushnil(L);
    lua_rawset(L, 2);
  }
  if (!ok) return fail(err);
  SendStatus st =
      inst->serviceHost()->send(inst->service(), handle, Opcode::Binary,
                                reinterpret_cast<const uint8_t*>(out.data()), out.size());
  if (st != SendStatus::Ok) {
    // The same answers as ws:send with a string.
    lua_pushboolean(L, false);
    lua_pushstring(L, sendStatusMessage(st));
    return 2;
  }
  lua_pushboolean(L, true);
  return 1;
}

// oon_error(object) -> nil | why: what bcast:send checks for a table.
int oonError(lua_State* L) {
  int64_t cid = 0;
  std::string why = checkOutbound(L, 1, cid);
  if (why.empty() && cid == 0) why = "broadcasts carry OONs (cid > 0), not responses";
  if (why.empty()) return 0;
  lua_pushlstring(L, why.data(), why.size());
  return 1;
}

// reject_text(handler): a text frame on a LAppS service.
int rejectText(lua_State* L) {
  LuaInstance* inst = self(L);
  uint64_t handle;
  if (Handle::fromNumber(lua_tonumber(L, 1), handle)) {
    inst->serviceHost()->close(inst->service(), handle, 1003,
                               "LAppS messages are binary CBOR frames");
  }
  return 0;
}

}  // namespace

void registerLappsProtocol(lua_State* L, LuaInstance* instance) {
  const struct {
    const char* key;
    lua_CFunction fn;
  } fns[] = {{"lapps.protocol.classify", classify},
             {"lapps.protocol.send", sendObject},
             {"lapps.protocol.oon", oonError},
             {"lapps.protocol.text", rejectText}};
  for (const auto& f : fns) {
    lua_pushlightuserdata(L, instance);
    lua_pushcclosure(L, f.fn, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, f.key);
  }
}

}  // namespace lapps
