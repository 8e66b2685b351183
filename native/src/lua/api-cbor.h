// The `cbor` module: cbor.encode(v) -> string | nil, err; cbor.decode(s) -> v | nil, err;
// cbor.null; cbor.array(t) / cbor.object(t) mark a table so it encodes as that type.
#pragma once

struct lua_State;

namespace lapps {

// Pushes the module table (a lua_CFunction: call it directly or through lua_cpcall).
int openCbor(lua_State* L);

}  // namespace lapps
