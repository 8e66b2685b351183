#include "lua/lua-value.h"

#include <lua.hpp>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

#include "embedded-lua.h"

namespace lapps {

namespace {

constexpr int kTypeCdata = 10;  // LuaJIT's lua_type() for cdata (no public macro)

char nullAnchor;
char helperKey;      // registry[&helperKey] = {make, kind} (or false without the FFI)
char objectMetaKey;  // registry[&objectMetaKey] = the kObjectMeta metatable
char arrayMetaKey;   // registry[&arrayMetaKey] = the kArrayMeta metatable
char markKey;        // metatable[&markKey] = 1 (array), 2 (object)

// Pushes helper `which` (1 make, 2 kind); false when the FFI is unavailable.
bool pushHelper(lua_State* L, int which) {
  lua_pushlightuserdata(L, &helperKey);
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return false;
  }
  lua_rawgeti(L, -1, which);
  lua_remove(L, -2);
  return true;
}

void pushBits(lua_State* L, uint64_t bits, bool isSigned) {
  if (!pushHelper(L, 1)) {  // no FFI: the nearest double is the best Lua can hold
    lua_pushnumber(L, isSigned ? double(int64_t(bits)) : double(bits));
    return;
  }
  lua_pushnumber(L, double(bits >> 32));
  lua_pushnumber(L, double(bits & 0xFFFFFFFFu));
  lua_pushboolean(L, isSigned);
  lua_call(L, 3, 1);
}

}  // namespace

void pushObjectMeta(lua_State* L) {
  lua_pushlightuserdata(L, &objectMetaKey);
  lua_rawget(L, LUA_REGISTRYINDEX);
}

void pushArrayMeta(lua_State* L) {
  lua_pushlightuserdata(L, &arrayMetaKey);
  lua_rawget(L, LUA_REGISTRYINDEX);
}

void* nullValue() {
  return &nullAnchor;
}

void initValueModel(lua_State* L) {
  // Each metatable also under a light userdata key of the registry, and marked with one:
  // the codecs find and recognise them by pointer, without hashing a name per value.
  const struct {
    const char* name;
    const char* kind;
    char* key;
    int mark;
  } metas[] = {{kObjectMeta, "object", &objectMetaKey, 2}, {kArrayMeta, "array", &arrayMetaKey, 1}};
  for (const auto& m : metas) {
    luaL_newmetatable(L, m.name);
    lua_pushstring(L, m.kind);
    lua_setfield(L, -2, "__lapps");
    lua_pushlightuserdata(L, &markKey);
    lua_pushinteger(L, m.mark);
    lua_rawset(L, -3);
    lua_pushlightuserdata(L, m.key);
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
  }
  lua_pushlightuserdata(L, &helperKey);
  lua_rawget(L, LUA_REGISTRYINDEX);
  bool done = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (done) return;
  lua_pushlightuserdata(L, &helperKey);
  if (embedded::kValueHelpers.load(L) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
    lua_pop(L, 1);
    lua_pushboolean(L, 0);
  }
  lua_rawset(L, LUA_REGISTRYINDEX);
}

void pushInt64(lua_State* L, int64_t v) {
  if (v >= -int64_t{1} << 53 && v <= int64_t{1} << 53) {
    lua_pushnumber(L, double(v));
  } else {
    pushBits(L, uint64_t(v), true);
  }
}

void pushUint64(lua_State* L, uint64_t v) {
  if (v <= uint64_t{1} << 53) {
    lua_pushnumber(L, double(v));
  } else {
    pushBits(L, v, v > uint64_t(INT64_MAX) ? false : true);
  }
}

bool pushNegative(lua_State* L, uint64_t n) {
  if (n > uint64_t(INT64_MAX)) return false;
  pushInt64(L, -1 - int64_t(n));
  return true;
}

int readInt64Cdata(lua_State* L, int idx, uint64_t& bits) {
  if (lua_type(L, idx) != kTypeCdata) return 0;
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  if (!pushHelper(L, 2)) return 0;
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  int kind = int(lua_tointeger(L, -1));
  lua_pop(L, 1);
  if (kind != 0) std::memcpy(&bits, lua_topointer(L, idx), 8);
  return kind;
}

namespace {

// 1 array, 2 object, 0 plain (or no metatable).
int marker(lua_State* L, int idx) {
  if (!lua_getmetatable(L, idx)) return 0;
  lua_pushlightuserdata(L, &markKey);
  lua_rawget(L, -2);
  int m = int(lua_tointeger(L, -1));
  lua_pop(L, 2);
  return m;
}

}  // namespace

int64_t arrayLength(lua_State* L, int idx) {
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  int m = marker(L, idx);
  if (m == 1) return int64_t(lua_objlen(L, idx));
  if (m == 2) return -1;
  size_t n = lua_objlen(L, idx);
  if (n == 0) return -1;
  size_t count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    double k = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
    if (!(k >= 1 && k <= double(n) && k == double(size_t(k))) || ++count > n) {
      lua_pop(L, 1);
      return -1;
    }
  }
  return count == n ? int64_t(n) : -1;
}

ValueKind valueKind(lua_State* L, int idx) {
  switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
      return ValueKind::kBoolean;
    case LUA_TNUMBER:
      return ValueKind::kNumber;
    case LUA_TSTRING:
      return ValueKind::kString;
    case LUA_TLIGHTUSERDATA:
      return lua_touserdata(L, idx) == nullValue() ? ValueKind::kNull : ValueKind::kOther;
    case LUA_TTABLE:
      return arrayLength(L, idx) >= 0 ? ValueKind::kArray : ValueKind::kObject;
    case kTypeCdata: {
      uint64_t bits;
      return readInt64Cdata(L, idx, bits) != 0 ? ValueKind::kNumber : ValueKind::kOther;
    }
    default:
      return ValueKind::kOther;
  }
}

void pushSortedKeys(lua_State* L, int idx) {
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  lua_checkstack(L, 4);
  lua_newtable(L);  // the keys, in lua_next order: anchors the strings read below
  int raw = lua_gettop(L);
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, raw, ++n);
  }
  struct Key {
    int rank;  // 0 number, 1 string, 2 other
    double num;
    std::string_view str;
    int pos;
  };
  std::vector<Key> keys(static_cast<size_t>(n));
  for (int i = 1; i <= n; ++i) {
    lua_rawgeti(L, raw, i);
    Key& k = keys[size_t(i - 1)];
    k.pos = i;
    k.num = 0;
    int t = lua_type(L, -1);
    if (t == LUA_TNUMBER) {
      k.rank = 0;
      k.num = lua_tonumber(L, -1);
    } else if (t == LUA_TSTRING) {
      size_t len;
      const char* s = lua_tolstring(L, -1, &len);
      k.rank = 1;
      k.str = std::string_view(s, len);
    } else {
      k.rank = 2;
    }
    lua_pop(L, 1);
  }
  std::sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
    if (a.rank != b.rank) return a.rank < b.rank;
    if (a.rank == 0) return a.num < b.num;
    if (a.rank == 1) return a.str < b.str;
    return a.pos < b.pos;
  });
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; ++i) {
    lua_rawgeti(L, raw, keys[size_t(i)].pos);
    lua_rawseti(L, -2, i + 1);
  }
  lua_remove(L, raw);
}

}  // namespace lapps
