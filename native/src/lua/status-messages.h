// What a Lua wrapper (ws, bcast) returns after `false`, by the result code its C entry point
// answered: the message of every SendStatus, from the one registry (core/service-host.h,
// where the code is the C API's), and the module's own codes for what it checks itself.
#pragma once

#include <lua.hpp>

#include <initializer_list>

#include "core/service-host.h"

namespace lapps {

// A module's own result: its code (kModuleResultBase and up, so it never meets a C API
// code), an optional name for the Lua side's own checks, and its message.
struct ModuleResult {
  int code;
  const char* name;  // or null
  const char* message;
};
inline constexpr int kModuleResultBase = 100;

// Pushes {[code] = message, [name] = message}.
inline void pushStatusMessages(lua_State* L, std::initializer_list<ModuleResult> own) {
  lua_createtable(L, 8, 2);
  for (const SendStatusText& s : kSendStatuses) {
    if (!s.message) continue;
    lua_pushstring(L, s.message);
    lua_rawseti(L, -2, s.code);
  }
  for (const ModuleResult& r : own) {
    lua_pushstring(L, r.message);
    lua_rawseti(L, -2, r.code);
    if (r.name) {
      lua_pushstring(L, r.message);
      lua_setfield(L, -2, r.name);
    }
  }
}

}  // namespace lapps
