#include "lua/lua-instance.h"

#include <lua.hpp>

#include <string>

#include "lua/api-ws.h"

namespace lapps {

namespace {

const char* const kEntryNames[] = {"onStart", "onMessage", "onDisconnect", "onShutdown"};

// Message handler for lua_pcall: appends the traceback to the error.
int traceback(lua_State* L) {
  const char* msg = lua_tostring(L, 1);
  if (!msg) {
    msg = luaL_typename(L, 1);
    lua_pushfstring(L, "(error object is a %s value)", msg);
    msg = lua_tostring(L, -1);
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

// print(...) goes to the server log, tagged with the instance name.
int luaPrint(lua_State* L) {
  auto* self = static_cast<LuaInstance*>(lua_touserdata(L, lua_upvalueindex(1)));
  int n = lua_gettop(L);
  std::string line;
  lua_getglobal(L, "tostring");
  for (int i = 1; i <= n; ++i) {
    lua_pushvalue(L, -1);
    lua_pushvalue(L, i);
    lua_call(L, 1, 1);
    size_t len;
    const char* s = lua_tolstring(L, -1, &len);
    if (!s) return luaL_error(L, "'tostring' must return a string to 'print'");
    if (i > 1) line.push_back('\t');
    line.append(s, len);
    lua_pop(L, 1);
  }
  self->log(LogLevel::Info, std::move(line));
  return 0;
}

}  // namespace

LuaInstance::LuaInstance(const ServiceSettings& service, uint32_t index, EventChannel& events)
    : service_(service), name_(service.name + "#" + std::to_string(index)), events_(events) {
  for (int& r : entryRefs_) r = LUA_NOREF;
}

LuaInstance::~LuaInstance() {
  if (L_) lua_close(L_);
}

void LuaInstance::log(LogLevel level, std::string message) {
  events_.log(level, "service " + name_, std::move(message));
}

std::string LuaInstance::load() {
  L_ = luaL_newstate();
  if (!L_) return "cannot create a Lua state (out of memory)";
  luaL_openlibs(L_);

  // The service's directory is on the module path, so helper modules load with require.
  std::string dir = service_.source.substr(0, service_.source.find_last_of('/') + 1);
  lua_getglobal(L_, "package");
  lua_getfield(L_, -1, "path");
  std::string path = dir + "?.lua;" + dir + "?/init.lua;" + lua_tostring(L_, -1);
  lua_pop(L_, 1);
  lua_pushlstring(L_, path.data(), path.size());
  lua_setfield(L_, -2, "path");
  lua_pop(L_, 1);

  lua_pushlightuserdata(L_, this);
  lua_pushcclosure(L_, luaPrint, 1);
  lua_setglobal(L_, "print");
  // Module set-up runs protected: even an allocation failure there is a clean error.
  lua_CFunction setup = [](lua_State* L) -> int {
    registerWsApi(L, static_cast<LuaInstance*>(lua_touserdata(L, 1)));
    return 0;
  };
  if (lua_cpcall(L_, setup, this) != 0) {
    std::string err = lua_tostring(L_, -1);
    lua_pop(L_, 1);
    return "cannot set up the Lua modules: " + err;
  }

  lua_pushcfunction(L_, traceback);
  tracebackIndex_ = lua_gettop(L_);  // stays at the bottom of the stack for every call

  if (luaL_loadfile(L_, service_.source.c_str()) != 0) {
    std::string err = lua_tostring(L_, -1);
    lua_pop(L_, 1);
    return err;
  }
  // Like LAppS: the module's returned table becomes the global named after the service.
  if (lua_pcall(L_, 0, 1, tracebackIndex_) != 0) {
    std::string err = lua_tostring(L_, -1);
    lua_pop(L_, 1);
    return err;
  }
  if (lua_isnil(L_, -1)) {
    lua_pop(L_, 1);
    lua_getglobal(L_, service_.name.c_str());
  }
  if (!lua_istable(L_, -1)) {
    lua_pop(L_, 1);
    return service_.source + ": the service must return a table (or set the global '" +
           service_.name + "')";
  }
  lua_pushvalue(L_, -1);
  lua_setglobal(L_, service_.name.c_str());
  for (int e = 0; e < kEntryCount; ++e) {
    lua_getfield(L_, -1, kEntryNames[e]);
    if (!lua_isfunction(L_, -1)) {
      lua_pop(L_, 2);
      return service_.source + ": the service table has no function '" + kEntryNames[e] + "'";
    }
    entryRefs_[e] = luaL_ref(L_, LUA_REGISTRYINDEX);
  }
  lua_pop(L_, 1);
  return {};
}

bool LuaInstance::call(Entry entry, int nargs) {
  // Stack: traceback, fn, args...
  if (lua_pcall(L_, nargs, 1, tracebackIndex_) != 0) {
    size_t len;
    const char* err = lua_tolstring(L_, -1, &len);
    log(LogLevel::Error, std::string(kEntryNames[entry]) + ": " +
                             (err ? std::string(err, len) : std::string("(no message)")));
    lua_settop(L_, tracebackIndex_);
    return false;
  }
  // Only an explicit `false` counts as failure; nil (no return value) is success.
  bool ok = !(lua_isboolean(L_, -1) && !lua_toboolean(L_, -1));
  lua_settop(L_, tracebackIndex_);
  if (!ok) log(LogLevel::Warn, std::string(kEntryNames[entry]) + " returned false");
  return ok;
}

void LuaInstance::onStart() {
  lua_rawgeti(L_, LUA_REGISTRYINDEX, entryRefs_[kOnStart]);
  call(kOnStart, 0);
}

bool LuaInstance::onMessage(uint64_t handle, int opcode, const uint8_t* data, size_t len) {
  lua_rawgeti(L_, LUA_REGISTRYINDEX, entryRefs_[kOnMessage]);
  lua_pushnumber(L_, lua_Number(handle));
  lua_pushinteger(L_, opcode);
  lua_pushlstring(L_, reinterpret_cast<const char*>(data), len);
  return call(kOnMessage, 3);
}

void LuaInstance::onDisconnect(uint64_t handle) {
  lua_rawgeti(L_, LUA_REGISTRYINDEX, entryRefs_[kOnDisconnect]);
  lua_pushnumber(L_, lua_Number(handle));
  call(kOnDisconnect, 1);
}

void LuaInstance::onShutdown() {
  lua_rawgeti(L_, LUA_REGISTRYINDEX, entryRefs_[kOnShutdown]);
  call(kOnShutdown, 0);
}

}  // namespace lapps
