// libFuzzer target for the CBOR decoder: every input is decoded twice, by the bare reader
// (well-formedness only) and into Lua values; the two must agree, and whatever decodes must
// encode and decode again. Build with -DLAPPS_FUZZ=ON and clang.
#include <lua.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "codec/cbor-reader.h"
#include "lua/lua-value.h"

namespace {

lua_State* state() {
  static lua_State* L = [] {
    lua_State* s = luaL_newstate();
    luaL_openlibs(s);
    lapps::initValueModel(s);
    return s;
  }();
  return L;
}

struct Input {
  const uint8_t* data;
  size_t size;
};

int run(lua_State* L) {
  auto* in = static_cast<Input*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  lapps::CborVisitor validator;
  lapps::CborReader reader(in->data, in->size);
  bool wellFormed = reader.readDocument(validator).code == lapps::CborErrc::kOk;
  std::string err;
  if (!lapps::pushCbor(L, in->data, in->size, err)) return 0;
  if (!wellFormed) std::abort();  // the Lua builder accepted what the reader refused
  std::string out;
  if (lapps::encodeCbor(L, 1, out, err)) {
    std::string again;
    if (!lapps::pushCbor(L, reinterpret_cast<const uint8_t*>(out.data()), out.size(), err)) {
      std::abort();  // our own encoding must decode
    }
  }
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lua_State* L = state();
  Input in{data, size};
  lua_cpcall(L, run, &in);
  lua_settop(L, 0);
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
