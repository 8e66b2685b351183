// The preloadable `time` module (LAppS), dot calls; every result is a plain Lua number:
//   time.now()        milliseconds since the Unix epoch, whole (CLOCK_REALTIME), as in LAppS
//   time.unix()       seconds since the Unix epoch with the fraction (CLOCK_REALTIME)
//   time.monotonic()  milliseconds on CLOCK_MONOTONIC with sub-millisecond fraction; only
//                     differences mean anything (it never jumps when the wall clock is set)
// Arguments are ignored, so `time:now()` works too. None of them blocks.
#pragma once

struct lua_State;

namespace lapps {

// Pushes the module table (a lua_CFunction: call it directly or through lua_cpcall).
int openTime(lua_State* L);

}  // namespace lapps
