// The sandbox option: removes io, os.execute (and the other os functions that reach the
// file system or processes), ffi, debug, native module loading and bytecode loading from a
// Lua state. lapps's own modules took what they need from ffi before this runs.
#pragma once

struct lua_State;

namespace lapps {

// Runs inside a protected call (may raise on memory exhaustion).
void applySandbox(lua_State* L);

}  // namespace lapps
