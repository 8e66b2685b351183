// The `nljson` module with LAppS's names and dot calls (see docs/lua-api.md): decode,
// decode_file, encode, encode_pretty, to_cbor, from_cbor, find, foreach, traverse, erase,
// empty, typename, null (plus array / object markers). Values are the plain Lua model of
// lua-value.h, so everything works on decoded values and hand-built tables alike.
#pragma once

struct lua_State;

namespace lapps {

// Pushes the module table (a lua_CFunction).
int openNljson(lua_State* L);

}  // namespace lapps
