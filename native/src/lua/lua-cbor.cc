// CBOR <-> Lua values without an intermediate tree: the reader's visitor builds tables
// directly on the Lua stack, and the encoder walks Lua tables straight into the writer.
#include <lua.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "codec/cbor-reader.h"
#include "codec/cbor-writer.h"
#include "lua/lua-value.h"
#include "protocol/utf8-validator.h"

namespace lapps {

namespace {

// Tables are sized from the declared count only up to this many slots; beyond it they
// grow as elements actually arrive.
constexpr int64_t kMaxPrealloc = 4096;

class LuaBuilder final : public CborVisitor {
 public:
  explicit LuaBuilder(lua_State* L) : L_(L) {}
  const char* error = nullptr;

  bool onUnsigned(uint64_t v) override { return room() && (pushUint64(L_, v), true); }
  bool onNegative(uint64_t n) override {
    if (!room()) return false;
    if (!pushNegative(L_, n)) return fail("integer below -2^63");
    return true;
  }
  bool onDouble(double d) override { return room() && (lua_pushnumber(L_, d), true); }
  bool onBool(bool b) override { return room() && (lua_pushboolean(L_, b), true); }
  bool onNull() override { return room() && (lua_pushlightuserdata(L_, nullValue()), true); }
  bool onString(bool, const uint8_t* p, size_t n) override {
    return room() && (lua_pushlstring(L_, reinterpret_cast<const char*>(p), n), true);
  }
  bool beginString(bool) override {
    chunks_.clear();
    return true;
  }
  bool chunk(const uint8_t* p, size_t n) override {
    chunks_.append(reinterpret_cast<const char*>(p), n);
    return true;
  }
  bool endString() override {
    return room() && (lua_pushlstring(L_, chunks_.data(), chunks_.size()), true);
  }
  bool beginArray(int64_t count) override {
    if (!room()) return false;
    lua_createtable(L_, int(std::clamp<int64_t>(count, 0, kMaxPrealloc)), 0);
    pushArrayMeta(L_);
    lua_setmetatable(L_, -2);
    return true;
  }
  bool arrayItem(size_t index) override {
    lua_rawseti(L_, -2, int(index + 1));
    return true;
  }
  bool beginMap(int64_t count) override {
    if (!room()) return false;
    lua_createtable(L_, 0, int(std::clamp<int64_t>(count, 0, kMaxPrealloc)));
    pushObjectMeta(L_);
    lua_setmetatable(L_, -2);
    return true;
  }
  bool mapKey() override {
    int t = lua_type(L_, -1);
    if (t == LUA_TSTRING) return true;
    if (t == LUA_TNUMBER) return !std::isnan(lua_tonumber(L_, -1)) || fail("NaN map key");
    return fail("unsupported map key type");
  }
  bool mapValue() override {
    lua_rawset(L_, -3);
    return true;
  }

 private:
  bool fail(const char* why) {
    error = why;
    return false;
  }
  bool room() { return lua_checkstack(L_, 4) || fail("Lua stack overflow"); }

  lua_State* L_;
  std::string chunks_;
};

// A vector of pointers with its first N inline: encoding a shallow value allocates nothing.
template <size_t N>
class SmallPath {
 public:
  size_t size() const { return more_.empty() ? N : more_.size(); }
  void resize(size_t n) {
    if (n <= N) return;
    if (more_.empty()) more_.assign(inline_, inline_ + N);
    more_.resize(n);
  }
  const void** begin() { return more_.empty() ? inline_ : more_.data(); }
  const void*& operator[](size_t i) { return begin()[i]; }

 private:
  const void* inline_[N] = {};
  std::vector<const void*> more_;
};

class Encoder {
 public:
  Encoder(lua_State* L, std::string& out, std::string& err, int maxDepth)
      : L_(L), w_(out), err_(err), maxDepth_(maxDepth) {}

  bool value(int idx, int depth) {
    switch (lua_type(L_, idx)) {
      case LUA_TNIL:
        w_.writeNull();
        return true;
      case LUA_TBOOLEAN:
        w_.writeBool(lua_toboolean(L_, idx));
        return true;
      case LUA_TNUMBER:
        number(lua_tonumber(L_, idx));
        return true;
      case LUA_TSTRING: {
        size_t n;
        const char* s = lua_tolstring(L_, idx, &n);
        if (isValidUtf8(reinterpret_cast<const uint8_t*>(s), n)) {
          w_.writeText(s, n);
        } else {
          w_.writeBytes(s, n);
        }
        return true;
      }
      case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L_, idx) != nullValue()) return fail("cannot encode a userdata");
        w_.writeNull();
        return true;
      case LUA_TTABLE:
        return table(idx, depth);
      default: {
        uint64_t bits;
        int kind = readInt64Cdata(L_, idx, bits);
        if (kind == 1) {
          w_.writeInt(int64_t(bits));
        } else if (kind == 2) {
          w_.writeUnsigned(bits);
        } else {
          return fail(std::string("cannot encode a ") + luaL_typename(L_, idx));
        }
        return true;
      }
    }
  }

 private:
  void number(double d) {
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == std::floor(d)) {
      w_.writeInt(int64_t(d));
    } else {
      w_.writeDouble(d);
    }
  }

  bool table(int idx, int depth) {
    if (depth >= maxDepth_) return fail("nesting too deep");
    const void* self = lua_topointer(L_, idx);
    if (std::find(path_.begin(), path_.begin() + depth, self) != path_.begin() + depth) {
      return fail("cycle");
    }
    if (!lua_checkstack(L_, 6)) return fail("Lua stack overflow");
    // The tables from the root to this one, by depth: grown only past kInlineDepth.
    if (size_t(depth) >= path_.size()) path_.resize(size_t(depth) + 1);
    path_[size_t(depth)] = self;
    bool ok = true;
    int64_t n = arrayLength(L_, idx);
    if (n >= 0) {
      w_.writeArrayHeader(uint64_t(n));
      for (int64_t i = 1; ok && i <= n; ++i) {
        lua_rawgeti(L_, idx, int(i));
        ok = value(lua_gettop(L_), depth + 1);
        lua_pop(L_, 1);
      }
    } else if (smallObject(idx, depth, ok)) {
      // written
    } else {
      pushSortedKeys(L_, idx);
      int keys = lua_gettop(L_);
      size_t count = lua_objlen(L_, keys);
      w_.writeMapHeader(count);
      for (size_t i = 1; ok && i <= count; ++i) {
        lua_rawgeti(L_, keys, int(i));
        int k = lua_gettop(L_);
        if (lua_type(L_, k) == LUA_TNUMBER) {
          // Integer keys only while exact as Lua numbers: a larger integer key would decode
          // to int64 cdata, which cannot index a table.
          double d = lua_tonumber(L_, k);
          if (std::fabs(d) <= 9007199254740992.0) {
            number(d);
          } else {
            w_.writeDouble(d);
          }
        } else if (lua_type(L_, k) == LUA_TSTRING) {
          ok = value(k, depth + 1);
        } else {
          ok = fail(std::string("unsupported map key type ") + luaL_typename(L_, k));
        }
        if (ok) {
          lua_rawget(L_, idx);
          ok = value(lua_gettop(L_), depth + 1);
        }
        lua_settop(L_, keys);
      }
      lua_pop(L_, 1);
    }
    return ok;
  }

  // An object of up to kSmallKeys string keys (the common message): its keys are sorted on
  // the Lua stack, without the table and vector pushSortedKeys makes. False (nothing
  // written, stack as it was) for anything else; ok is the outcome when true.
  static constexpr int kSmallKeys = 16;
  bool smallObject(int idx, int depth, bool& ok) {
    const int base = lua_gettop(L_);
    if (!lua_checkstack(L_, kSmallKeys + 4)) return false;
    struct Key {
      const char* s;
      size_t n;
      int slot;
    };
    Key keys[kSmallKeys];
    int count = 0;
    lua_pushnil(L_);
    while (lua_next(L_, idx) != 0) {
      lua_pop(L_, 1);
      if (count == kSmallKeys || lua_type(L_, -1) != LUA_TSTRING) {
        lua_settop(L_, base);
        return false;
      }
      // A copy of the key stays on the stack (anchoring its string); lua_next goes on
      // from the original.
      lua_pushvalue(L_, -1);
      Key& k = keys[count++];
      k.slot = lua_gettop(L_) - 1;
      k.s = lua_tolstring(L_, k.slot, &k.n);
    }
    // Insertion sort: a handful of keys, bytewise like pushSortedKeys.
    for (int i = 1; i < count; ++i) {
      Key k = keys[i];
      int j = i - 1;
      while (j >= 0 && std::string_view(keys[j].s, keys[j].n) > std::string_view(k.s, k.n)) {
        keys[j + 1] = keys[j];
        --j;
      }
      keys[j + 1] = k;
    }
    w_.writeMapHeader(uint64_t(count));
    ok = true;
    for (int i = 0; ok && i < count; ++i) {
      ok = value(keys[i].slot, depth + 1);
      if (!ok) break;
      lua_pushvalue(L_, keys[i].slot);
      lua_rawget(L_, idx);
      ok = value(lua_gettop(L_), depth + 1);
      lua_pop(L_, 1);
    }
    lua_settop(L_, base);
    return true;
  }

  bool fail(std::string why) {
    if (err_.empty()) err_ = std::move(why);
    return false;
  }

  lua_State* L_;
  CborWriter w_;
  std::string& err_;
  int maxDepth_;
  static constexpr size_t kInlineDepth = 8;
  SmallPath<kInlineDepth> path_;
};

}  // namespace

int pushCbor(lua_State* L, const uint8_t* data, size_t size, std::string& err, int maxDepth) {
  int top = lua_gettop(L);
  LuaBuilder builder(L);
  CborReader reader(data, size, maxDepth);
  CborError e = reader.readDocument(builder);
  if (e.code == CborErrc::kOk) return 1;
  lua_settop(L, top);
  err = e.code == CborErrc::kVisitor && builder.error ? builder.error : cborErrorMessage(e.code);
  err += " at byte " + std::to_string(e.offset);
  return 0;
}

bool encodeCbor(lua_State* L, int idx, std::string& out, std::string& err, int maxDepth) {
  int top = lua_gettop(L);
  idx = idx < 0 ? top + idx + 1 : idx;
  size_t mark = out.size();
  Encoder enc(L, out, err, maxDepth);
  bool ok = enc.value(idx, 0);
  lua_settop(L, top);
  if (!ok) out.resize(mark);
  return ok;
}

}  // namespace lapps
