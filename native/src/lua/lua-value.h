// The Lua value model shared by the cbor, json and nljson modules.
//
//   CBOR / JSON            Lua
//   map / object           table with metatable kObjectMeta (registry name "lapps.object")
//   array                  table with metatable kArrayMeta ("lapps.array"), 1-based
//   null (and undefined)   nullValue(): one light userdata, the same in every state
//   integer |v| <= 2^53    number
//   other 64-bit integer   int64_t cdata (uint64_t cdata above 2^63-1)
//   float                  number
//   text / byte string     string
//
// Encoding takes any of those back, plus plain tables: a table whose keys are exactly
// 1..n (n >= 1) is an array, any other table (including the empty one) is an object.
// Lua numbers that are integral and in the int64 range are written as integers. Object
// keys are written in sorted order (numbers before strings), so output is deterministic.
//
// Every function here may raise a Lua error on memory exhaustion, so callers run inside
// a protected call (any lua_CFunction or lua_pcall); all other failures are returned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

struct lua_State;

namespace lapps {

inline constexpr const char* kObjectMeta = "lapps.object";
inline constexpr const char* kArrayMeta = "lapps.array";
inline constexpr int kValueDefaultDepth = 64;

// Push the kObjectMeta / kArrayMeta metatable (after initValueModel), found by pointer.
void pushObjectMeta(lua_State* L);
void pushArrayMeta(lua_State* L);

// The null sentinel (a light userdata value).
void* nullValue();

// Creates the shared metatables and the 64-bit integer helpers in this state's registry
// (idempotent). Every module opener calls it.
void initValueModel(lua_State* L);

// Pushes the integer as a Lua number when exact, else as int64/uint64 cdata. The second
// form pushes -1 - n for the CBOR negative range; returns false (nothing pushed) below
// -2^63, which Lua cannot hold.
void pushInt64(lua_State* L, int64_t v);
void pushUint64(lua_State* L, uint64_t v);
bool pushNegative(lua_State* L, uint64_t n);

// What a Lua value is for the codecs.
enum class ValueKind {
  kNull,
  kBoolean,
  kNumber,  // includes int64/uint64 cdata
  kString,
  kArray,
  kObject,
  kOther,  // functions, userdata, other cdata, nil
};
// nil is reported as kOther; tables are classified as described above.
ValueKind valueKind(lua_State* L, int idx);
// For a table: the array length if it is an array (marked, or plain 1..n), else -1.
int64_t arrayLength(lua_State* L, int idx);
// Reads an int64/uint64 cdata at idx. Returns 0 if it is not one, 1 for int64, 2 for uint64.
int readInt64Cdata(lua_State* L, int idx, uint64_t& bits);
// Pushes a new table listing the keys of the table at idx in the codecs' order (numbers
// ascending, then strings bytewise; other key types last, unordered).
void pushSortedKeys(lua_State* L, int idx);

// Decoders push exactly one value and return 1, or return 0 with err set (stack as
// before). Encoders append to out and return true, or return false with err set.
int pushCbor(lua_State* L, const uint8_t* data, size_t size, std::string& err,
             int maxDepth = kValueDefaultDepth);
bool encodeCbor(lua_State* L, int idx, std::string& out, std::string& err,
                int maxDepth = kValueDefaultDepth);
int pushJson(lua_State* L, const char* data, size_t size, std::string& err,
             int maxDepth = kValueDefaultDepth);
// indent < 0: compact; otherwise pretty-printed with that many spaces per level.
bool encodeJson(lua_State* L, int idx, std::string& out, std::string& err, int indent = -1,
                int maxDepth = kValueDefaultDepth);

}  // namespace lapps
