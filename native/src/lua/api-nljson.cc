// nljson: LAppS's JSON module over the shared Lua value model. Objects iterate in sorted
// key order (numbers ascending, then strings bytewise): Lua tables keep no insertion
// order, and sorted order is what LAppS's nlohmann::json objects used, too.
#include "lua/api-nljson.h"

#include <lua.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "lua/api-util.h"
#include "lua/lua-value.h"

namespace lapps {

namespace {

using luautil::argError;
using luautil::nilError;

constexpr int kMaxIndent = 64;
constexpr long kMaxFileSize = 64L * 1024 * 1024;

void checkTable(lua_State* L, const char* fn) {
  if (!lua_istable(L, 1)) argError(L, fn, "object", 1);
}

void checkKey(lua_State* L, const char* fn) {
  int t = lua_type(L, 2);
  if (t != LUA_TSTRING && t != LUA_TNUMBER) argError(L, fn, "string or number key", 2);
}

// Pushes t[tostring(key)] for the number key at idx.
void getByText(lua_State* L, int t, int idx) {
  lua_pushvalue(L, idx);
  lua_tostring(L, -1);  // converts the copy in place
  lua_rawget(L, t);
}

int decode(lua_State* L) {
  if (lua_type(L, 1) != LUA_TSTRING) return argError(L, "nljson.decode", "string", 1);
  size_t n;
  const char* s = lua_tolstring(L, 1, &n);
  std::string err;
  if (pushJson(L, s, n, err)) return 1;
  return nilError(L, err);
}

int decodeFile(lua_State* L) {
  if (lua_type(L, 1) != LUA_TSTRING) return argError(L, "nljson.decode_file", "path string", 1);
  const char* path = lua_tostring(L, 1);
  std::string text, err;
  if (FILE* f = std::fopen(path, "rb")) {
    char buf[65536];
    size_t got;
    while ((got = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() <= kMaxFileSize) {
      text.append(buf, got);
    }
    bool readError = std::ferror(f) != 0;
    std::fclose(f);
    if (readError) {
      err = std::string("cannot read ") + path;
    } else if (text.size() > kMaxFileSize) {
      err = std::string(path) + ": file too large";
    } else if (pushJson(L, text.data(), text.size(), err)) {
      return 1;
    } else {
      err = std::string(path) + ":" + err;
    }
  } else {
    err = std::string("cannot open ") + path + ": " + std::strerror(errno);
  }
  return nilError(L, err);
}

int encode(lua_State* L) {
  lua_settop(L, 1);
  std::string out, err;
  bool ok = encodeJson(L, 1, out, err, -1);
  return luautil::pushEncoded(L, ok, out, err);
}

int encodePretty(lua_State* L) {
  int indent = 2;
  if (!lua_isnoneornil(L, 2)) {
    double d = lua_type(L, 2) == LUA_TNUMBER ? lua_tonumber(L, 2) : -1;
    if (!(d >= 0 && d <= kMaxIndent && d == int(d))) {
      return luaL_error(L, "nljson.encode_pretty: indent must be an integer in 0..%d", kMaxIndent);
    }
    indent = int(d);
  }
  lua_settop(L, 1);
  std::string out, err;
  bool ok = encodeJson(L, 1, out, err, indent);
  return luautil::pushEncoded(L, ok, out, err);
}

int toCbor(lua_State* L) {
  lua_settop(L, 1);
  std::string out, err;
  bool ok = encodeCbor(L, 1, out, err);
  return luautil::pushEncoded(L, ok, out, err);
}

int fromCbor(lua_State* L) {
  if (lua_type(L, 1) != LUA_TSTRING) return argError(L, "nljson.from_cbor", "string", 1);
  size_t n;
  const char* s = lua_tolstring(L, 1, &n);
  std::string err;
  if (pushCbor(L, reinterpret_cast<const uint8_t*>(s), n, err)) return 1;
  return nilError(L, err);
}

// find(obj, key): obj[key], else for a number key obj[tostring(key)]; nil when absent.
int find(lua_State* L) {
  checkTable(L, "nljson.find");
  checkKey(L, "nljson.find");
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  lua_rawget(L, 1);
  if (lua_isnil(L, -1) && lua_type(L, 2) == LUA_TNUMBER) {
    lua_pop(L, 1);
    getByText(L, 1, 2);
  }
  return 1;
}

// erase(obj, key): arrays (and plain sequences) remove index key and shift the rest down;
// objects remove key, or tostring(key) for a number. Returns whether anything was erased.
int erase(lua_State* L) {
  checkTable(L, "nljson.erase");
  checkKey(L, "nljson.erase");
  lua_settop(L, 2);
  int64_t n = arrayLength(L, 1);
  if (n >= 0 && lua_type(L, 2) == LUA_TNUMBER) {
    double d = lua_tonumber(L, 2);
    if (!(d >= 1 && d <= double(n) && d == double(int64_t(d)))) {
      lua_pushboolean(L, 0);
      return 1;
    }
    for (int i = int(d); i < int(n); ++i) {
      lua_rawgeti(L, 1, i + 1);
      lua_rawseti(L, 1, i);
    }
    lua_pushnil(L);
    lua_rawseti(L, 1, int(n));
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, 1);
  if (!lua_isnil(L, -1)) {
    lua_pushvalue(L, 2);
  } else if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_pop(L, 1);
    getByText(L, 1, 2);
    if (lua_isnil(L, -1)) {
      lua_pushboolean(L, 0);
      return 1;
    }
    lua_pushvalue(L, 2);
    lua_tostring(L, -1);
  } else {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushnil(L);
  lua_rawset(L, 1);
  lua_pushboolean(L, 1);
  return 1;
}

// Calls fn(key, value[, depth]) for each entry of the table at t (arrays by index,
// objects by sorted key). visit returns false to stop early.
template <class Visit>
void eachEntry(lua_State* L, int t, Visit visit) {
  luaL_checkstack(L, 8, "nljson: nesting too deep");
  int64_t n = arrayLength(L, t);
  if (n >= 0) {
    for (int64_t i = 1; i <= n; ++i) {
      lua_pushnumber(L, double(i));
      lua_rawgeti(L, t, int(i));
      if (!visit()) return;
    }
    return;
  }
  pushSortedKeys(L, t);
  int keys = lua_gettop(L);
  size_t count = lua_objlen(L, keys);
  for (size_t i = 1; i <= count; ++i) {
    lua_rawgeti(L, keys, int(i));
    lua_pushvalue(L, -1);
    lua_rawget(L, t);
    if (lua_isnil(L, -1)) {  // erased by an earlier callback
      lua_pop(L, 2);
      continue;
    }
    if (!visit()) break;
  }
  lua_settop(L, keys - 1);
}

// foreach(obj, fn): fn(key_or_index, value) per entry; returning false stops.
int foreach (lua_State* L) {
  checkTable(L, "nljson.foreach");
  if (!lua_isfunction(L, 2)) return argError(L, "nljson.foreach", "function", 2);
  lua_settop(L, 2);
  eachEntry(L, 1, [L] {
    int base = lua_gettop(L) - 2;  // key, value on top
    lua_pushvalue(L, 2);
    lua_insert(L, -3);
    lua_call(L, 2, 1);
    bool stop = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
    lua_settop(L, base);
    return !stop;
  });
  return 0;
}

// Pre-order walk below the table at t; depth is 1 for t's own entries.
// path[0..depth) holds the tables being walked (a plain array: luaL_error may unwind it).
void traverseAt(lua_State* L, int t, int depth, const void** path) {
  if (depth > kValueDefaultDepth) luaL_error(L, "nljson.traverse: nesting too deep");
  path[depth - 1] = lua_topointer(L, t);
  eachEntry(L, t, [L, depth, path] {
    int base = lua_gettop(L) - 2;
    int value = base + 2;
    lua_pushvalue(L, 2);
    lua_pushvalue(L, base + 1);
    lua_pushvalue(L, value);
    lua_pushnumber(L, depth);
    lua_call(L, 3, 1);
    bool prune = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!prune && lua_istable(L, value)) {
      const void* self = lua_topointer(L, value);
      for (int i = 0; i < depth; ++i) {
        if (path[i] == self) luaL_error(L, "nljson.traverse: cycle");
      }
      traverseAt(L, value, depth + 1, path);
    }
    lua_settop(L, base);
    return true;
  });
}

// traverse(obj, fn): fn(key_or_index, value, depth) for every node below obj, parents
// before children; returning false from fn skips that node's children.
int traverse(lua_State* L) {
  checkTable(L, "nljson.traverse");
  if (!lua_isfunction(L, 2)) return argError(L, "nljson.traverse", "function", 2);
  lua_settop(L, 2);
  const void* path[kValueDefaultDepth];
  traverseAt(L, 1, 1, path);
  return 0;
}

int empty(lua_State* L) {
  switch (lua_type(L, 1)) {
    case LUA_TNONE:
    case LUA_TNIL:
      lua_pushboolean(L, 1);
      return 1;
    case LUA_TTABLE:
      lua_settop(L, 1);
      lua_pushnil(L);
      lua_pushboolean(L, lua_next(L, 1) == 0);
      return 1;
    default:
      break;
  }
  ValueKind k = valueKind(L, 1);
  if (k == ValueKind::kOther) return argError(L, "nljson.empty", "JSON value", 1);
  lua_pushboolean(L, k == ValueKind::kNull);
  return 1;
}

int typeName(lua_State* L) {
  if (lua_isnoneornil(L, 1)) {
    lua_pushliteral(L, "null");
    return 1;
  }
  switch (valueKind(L, 1)) {
    case ValueKind::kNull:
      lua_pushliteral(L, "null");
      break;
    case ValueKind::kBoolean:
      lua_pushliteral(L, "boolean");
      break;
    case ValueKind::kNumber:
      lua_pushliteral(L, "number");
      break;
    case ValueKind::kString:
      lua_pushliteral(L, "string");
      break;
    case ValueKind::kArray:
      lua_pushliteral(L, "array");
      break;
    case ValueKind::kObject:
      lua_pushliteral(L, "object");
      break;
    case ValueKind::kOther:
      return argError(L, "nljson.typename", "JSON value", 1);
  }
  return 1;
}

}  // namespace

int openNljson(lua_State* L) {
  initValueModel(L);
  static const luaL_Reg kFunctions[] = {
      {"decode", decode},     {"decode_file", decodeFile},
      {"encode", encode},     {"encode_pretty", encodePretty},
      {"to_cbor", toCbor},    {"from_cbor", fromCbor},
      {"find", find},         {"foreach", foreach},
      {"traverse", traverse}, {"erase", erase},
      {"empty", empty},       {"typename", typeName},
      {nullptr, nullptr},
  };
  lua_createtable(L, 0, 16);
  for (const luaL_Reg* r = kFunctions; r->name; ++r) {
    lua_pushcfunction(L, r->func);
    lua_setfield(L, -2, r->name);
  }
  luautil::addNull(L);
  luautil::addMarker(L, "nljson", "array", kArrayMeta);
  luautil::addMarker(L, "nljson", "object", kObjectMeta);
  return 1;
}

}  // namespace lapps
