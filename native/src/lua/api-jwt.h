// lapps.jwt: verify(token, key, options) -> claims, header | nil, err;
// sign(claims, key, alg) -> token | nil, err. The work is security/jwt.h's; this is the
// Lua face (see docs/lua-api.md).
#pragma once

struct lua_State;

namespace lapps {

// Pushes the module table (a lua_CFunction).
int openJwt(lua_State* L);

}  // namespace lapps
