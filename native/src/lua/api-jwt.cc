#include "lua/api-jwt.h"

#include <lua.hpp>

#include <cstdio>
#include <string>

#include "lua/api-util.h"
#include "lua/lua-value.h"
#include "security/jwt.h"

namespace lapps {

namespace {

// Misuse is raised as a Lua error only once no C++ object is alive: the work is done in
// a helper that reports misuse in `misuse` and returns -1.
using Impl = int (*)(lua_State* L, std::string& misuse);

template <Impl impl>
int guarded(lua_State* L) {
  char msg[256];
  int n;
  {
    std::string misuse;
    n = impl(L, misuse);
    if (n < 0) std::snprintf(msg, sizeof msg, "%s", misuse.c_str());
  }
  if (n < 0) return luaL_error(L, "%s", msg);
  return n;
}

// The key at idx: a string (PEM, JWK JSON or secret) or a table (a JWK).
bool readKey(lua_State* L, int idx, const char* fn, jwt::Key& key, std::string& err,
             std::string& misuse) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char* s = lua_tolstring(L, idx, &n);
    return jwt::Key::parse(std::string_view(s, n), key, err);
  }
  if (lua_istable(L, idx)) {
    std::string json;
    if (!encodeJson(L, idx, json, err)) {
      err = "bad key: the JWK table does not encode as JSON (" + err + ")";
      return false;
    }
    return jwt::Key::fromJwk(json, key, err);
  }
  misuse = std::string(fn) + ": key must be a string or a JWK table, got " + luaL_typename(L, idx);
  return false;
}

bool readAlg(lua_State* L, int idx, const char* fn, const char* what, jwt::Alg& alg,
             std::string& misuse) {
  if (lua_type(L, idx) != LUA_TSTRING) {
    misuse =
        std::string(fn) + ": " + what + " must be an algorithm name, got " + luaL_typename(L, idx);
    return false;
  }
  const char* name = lua_tostring(L, idx);
  if (!jwt::algFromName(name, alg)) {
    misuse = std::string(fn) + ": " + what + ": \"" + std::string(name).substr(0, 32) +
             "\" is not an algorithm lapps.jwt accepts (\"none\" never is)";
    return false;
  }
  return true;
}

// options.aud: a string or a list of strings.
bool readAudiences(lua_State* L, int idx, std::vector<std::string>& out, std::string& misuse) {
  const char* bad = "lapps.jwt.verify: options.aud must be a string or a list of strings";
  if (lua_type(L, idx) == LUA_TSTRING) {
    out.emplace_back(lua_tostring(L, idx));
    return true;
  }
  if (!lua_istable(L, idx)) {
    misuse = bad;
    return false;
  }
  for (int i = 1;; ++i) {
    lua_rawgeti(L, idx, i);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      break;
    }
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      misuse = bad;
      return false;
    }
    out.emplace_back(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  if (out.empty()) misuse = bad;
  return !out.empty();
}

bool readOptions(lua_State* L, int idx, jwt::VerifyOptions& o, std::string& misuse) {
  const char* fn = "lapps.jwt.verify";
  if (!lua_istable(L, idx)) {
    misuse = std::string(fn) + ": options must be a table with options.algorithms, got " +
             luaL_typename(L, idx);
    return false;
  }
  lua_getfield(L, idx, "algorithms");
  int list = lua_gettop(L);
  if (!lua_istable(L, list) || lua_objlen(L, list) == 0) {
    misuse = std::string(fn) + ": options.algorithms must be a non-empty list of names";
    return false;
  }
  for (int i = 1; i <= static_cast<int>(lua_objlen(L, list)); ++i) {
    lua_rawgeti(L, list, i);
    jwt::Alg alg;
    bool ok = readAlg(L, -1, fn, "options.algorithms", alg, misuse);
    lua_pop(L, 1);
    if (!ok) return false;
    o.algorithms.push_back(alg);
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "leeway");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER || lua_tonumber(L, -1) < 0) {
      misuse = std::string(fn) + ": options.leeway must be a number of seconds >= 0";
      return false;
    }
    o.leeway = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "now");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER) {
      misuse = std::string(fn) + ": options.now must be seconds since the epoch";
      return false;
    }
    o.now = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "iss");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) {
      misuse = std::string(fn) + ": options.iss must be a string";
      return false;
    }
    o.issuer = lua_tostring(L, -1);
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "aud");
  if (!lua_isnil(L, -1) && !readAudiences(L, lua_gettop(L), o.audiences, misuse)) return false;
  lua_pop(L, 1);
  return true;
}

int verifyImpl(lua_State* L, std::string& misuse) {
  lua_settop(L, 3);
  if (lua_isnil(L, 1)) return luautil::nilError(L, "malformed: no token");
  if (lua_type(L, 1) != LUA_TSTRING) {
    misuse = std::string("lapps.jwt.verify: token must be a string, got ") + luaL_typename(L, 1);
    return -1;
  }
  jwt::VerifyOptions options;
  if (!readOptions(L, 3, options, misuse)) return -1;
  jwt::Key key;
  std::string err;
  if (!readKey(L, 2, "lapps.jwt.verify", key, err, misuse)) {
    return misuse.empty() ? luautil::nilError(L, err) : -1;
  }
  size_t n;
  const char* token = lua_tolstring(L, 1, &n);
  jwt::Verified v;
  if (!jwt::verify(std::string_view(token, n), key, options, v, err)) {
    return luautil::nilError(L, err);
  }
  if (!pushJson(L, v.payload.data(), v.payload.size(), err)) {
    return luautil::nilError(L, "malformed: the payload is not JSON (" + err + ")");
  }
  if (!pushJson(L, v.header.data(), v.header.size(), err)) {
    lua_pop(L, 1);
    return luautil::nilError(L, "malformed: the header is not JSON (" + err + ")");
  }
  return 2;
}

int signImpl(lua_State* L, std::string& misuse) {
  lua_settop(L, 3);
  const char* fn = "lapps.jwt.sign";
  if (!lua_istable(L, 1)) {
    misuse = std::string(fn) + ": claims must be a table, got " + luaL_typename(L, 1);
    return -1;
  }
  jwt::Alg alg;
  if (!readAlg(L, 3, fn, "alg", alg, misuse)) return -1;
  std::string claims, err;
  if (!encodeJson(L, 1, claims, err)) {
    return luautil::nilError(L, "malformed: the claims do not encode as JSON (" + err + ")");
  }
  jwt::Key key;
  if (!readKey(L, 2, fn, key, err, misuse)) {
    return misuse.empty() ? luautil::nilError(L, err) : -1;
  }
  std::string token;
  if (!jwt::sign(claims, key, alg, token, err)) return luautil::nilError(L, err);
  lua_pushlstring(L, token.data(), token.size());
  return 1;
}

}  // namespace

int openJwt(lua_State* L) {
  initValueModel(L);
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, guarded<verifyImpl>);
  lua_setfield(L, -2, "verify");
  lua_pushcfunction(L, guarded<signImpl>);
  lua_setfield(L, -2, "sign");
  lua_pushinteger(L, static_cast<lua_Integer>(jwt::kMaxTokenBytes));
  lua_setfield(L, -2, "max_token_bytes");
  return 1;
}

}  // namespace lapps
