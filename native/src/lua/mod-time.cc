#include "lua/mod-time.h"

#include <time.h>
#include <lua.hpp>

#include <cstdint>

namespace lapps {

namespace {

// clock_gettime cannot fail for these two clocks on Linux; both are answered by the vDSO.
timespec readClock(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return ts;
}

int now(lua_State* L) {
  timespec ts = readClock(CLOCK_REALTIME);
  // Whole milliseconds (below 2^53 for the next 285,000 years, so the double is exact).
  lua_pushnumber(L, double(int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000));
  return 1;
}

int unixSeconds(lua_State* L) {
  timespec ts = readClock(CLOCK_REALTIME);
  lua_pushnumber(L, double(ts.tv_sec) + double(ts.tv_nsec) / 1e9);
  return 1;
}

int monotonic(lua_State* L) {
  timespec ts = readClock(CLOCK_MONOTONIC);
  lua_pushnumber(L, double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6);
  return 1;
}

}  // namespace

int openTime(lua_State* L) {
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, now);
  lua_setfield(L, -2, "now");
  lua_pushcfunction(L, unixSeconds);
  lua_setfield(L, -2, "unix");
  lua_pushcfunction(L, monotonic);
  lua_setfield(L, -2, "monotonic");
  return 1;
}

}  // namespace lapps
