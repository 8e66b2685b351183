// coroutine.resume and coroutine.wrap that refuse to nest a coroutine when the C stack is
// running low (see io/lua-thread.h): resuming a coroutine inside another one costs C
// stack but no Lua stack, so LuaJIT itself never stops such a chain before SIGSEGV.
#pragma once

struct lua_State;

namespace lapps {

// Replaces coroutine.resume and coroutine.wrap in L. Runs inside a protected call.
void guardCoroutines(lua_State* L);

}  // namespace lapps
