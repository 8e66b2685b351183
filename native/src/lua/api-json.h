// The `json` module: json.encode(v[, {indent = n}]) -> string | nil, err;
// json.decode(s) -> v | nil, err; json.null; json.array(t) / json.object(t) markers.
#pragma once

struct lua_State;

namespace lapps {

// Pushes the module table (a lua_CFunction).
int openJson(lua_State* L);

}  // namespace lapps
