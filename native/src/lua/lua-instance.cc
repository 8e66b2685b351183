#include "lua/lua-instance.h"

#include <lua.hpp>

#include <string>

#include "core/worker.h"
#include "lua/api-bcast.h"
#include "lua/api-cbor.h"
#include "lua/api-json.h"
#include "lua/api-nljson.h"
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

// The message loop, compiled by the JIT together with the service's onMessage: one
// protected call per batch instead of one per message. Upvalues arrive as `...`.
constexpr const char* kDispatcher = R"lua(
local onMessage, next_ptr, false_ptr, instance_ptr = ...
local ffi = require("ffi")
local next_message = ffi.cast("int (*)(void *, double *, const char **, size_t *)", next_ptr)
local returned_false = ffi.cast("void (*)(void *)", false_ptr)
local instance = ffi.cast("void *", instance_ptr)
local handle = ffi.new("double[1]")
local data = ffi.new("const char *[1]")
local size = ffi.new("size_t[1]")
local tostr = ffi.string
return function()
  while true do
    local opcode = next_message(instance, handle, data, size)
    if opcode == 0 then return end
    if onMessage(handle[0], opcode, tostr(data[0], size[0])) == false then
      returned_false(instance)
    end
  end
end
)lua";

}  // namespace

extern "C" {
__attribute__((visibility("default"))) int lapps_next_message(void* instance, double* handle,
                                                              const char** data, size_t* len) {
  return static_cast<LuaInstance*>(instance)->nextMessage(handle, data, len);
}
__attribute__((visibility("default"))) void lapps_message_returned_false(void* instance) {
  static_cast<LuaInstance*>(instance)->messageReturnedFalse();
}
}

LuaInstance::LuaInstance(const ServiceSettings& service, uint32_t index, EventChannel& events)
    : ServiceInstance(service.name + "#" + std::to_string(index)),
      service_(service),
      events_(events) {
  for (int& r : entryRefs_) r = LUA_NOREF;
}

LuaInstance::~LuaInstance() {
  if (L_) lua_close(L_);
}

void LuaInstance::log(LogLevel level, std::string message) {
  events_.log(level, "service " + name(), std::move(message));
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
  // Every area of the API hangs off the `lapps` root table; the LAppS names (ws, bcast)
  // are globals too, as LAppS services expect.
  lua_CFunction setup = [](lua_State* L) -> int {
    auto* self = static_cast<LuaInstance*>(lua_touserdata(L, 1));
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "lapps");
    registerWsApi(L, self);
    lua_getglobal(L, "ws");
    lua_setfield(L, -2, "ws");
    pushBcastApi(L, self);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "bcast");
    lua_setfield(L, -2, "bcast");
    // Value codecs: lapps.cbor / lapps.json / lapps.nljson, require("cbor") etc., and the
    // LAppS global `nljson`.
    const struct {
      const char* name;
      lua_CFunction open;
    } codecs[] = {{"cbor", openCbor}, {"json", openJson}, {"nljson", openNljson}};
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    for (const auto& codec : codecs) {
      lua_pushcfunction(L, codec.open);
      lua_call(L, 0, 1);
      lua_pushvalue(L, -1);
      lua_setfield(L, -3, codec.name);  // package.loaded
      lua_setfield(L, -4, codec.name);  // lapps root
    }
    lua_pop(L, 2);
    lua_getfield(L, -1, "nljson");
    lua_setglobal(L, "nljson");
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
  // The dispatcher stays on the stack above the traceback handler, ready for each batch.
  if (luaL_loadbuffer(L_, kDispatcher, std::char_traits<char>::length(kDispatcher),
                      "=[lapps dispatch]") != 0) {
    std::string err = lua_tostring(L_, -1);
    lua_pop(L_, 1);
    return "cannot load the message dispatcher: " + err;
  }
  lua_rawgeti(L_, LUA_REGISTRYINDEX, entryRefs_[kOnMessage]);
  lua_pushlightuserdata(L_, reinterpret_cast<void*>(&lapps_next_message));
  lua_pushlightuserdata(L_, reinterpret_cast<void*>(&lapps_message_returned_false));
  lua_pushlightuserdata(L_, this);
  if (lua_pcall(L_, 4, 1, tracebackIndex_) != 0) {
    std::string err = lua_tostring(L_, -1);
    lua_pop(L_, 1);
    return "cannot set up the message dispatcher: " + err;
  }
  dispatcherIndex_ = lua_gettop(L_);
  baseTop_ = dispatcherIndex_;
  return {};
}

bool LuaInstance::call(Entry entry, int nargs) {
  // Stack: traceback, fn, args...
  if (lua_pcall(L_, nargs, 1, tracebackIndex_) != 0) {
    size_t len;
    const char* err = lua_tolstring(L_, -1, &len);
    log(LogLevel::Error, std::string(kEntryNames[entry]) + ": " +
                             (err ? std::string(err, len) : std::string("(no message)")));
    lua_settop(L_, baseTop_);
    return false;
  }
  // Only an explicit `false` counts as failure; nil (no return value) is success.
  bool ok = lua_toboolean(L_, -1) || lua_type(L_, -1) != LUA_TBOOLEAN;
  lua_pop(L_, 1);
  if (!ok) log(LogLevel::Warn, std::string(kEntryNames[entry]) + " returned false");
  return ok;
}

void LuaInstance::onStart() {
  lua_rawgeti(L_, LUA_REGISTRYINDEX, entryRefs_[kOnStart]);
  call(kOnStart, 0);
}

void LuaInstance::onMessages(MessageBatch& batch) {
  batch_ = &batch;
  lua_pushvalue(L_, dispatcherIndex_);
  if (lua_pcall(L_, 0, 0, tracebackIndex_) != 0) {
    size_t len;
    const char* err = lua_tolstring(L_, -1, &len);
    log(LogLevel::Error,
        "onMessage: " + (err ? std::string(err, len) : std::string("(no message)")));
    lua_settop(L_, baseTop_);
    // The failed message was the last one taken; its connection pays, nobody else.
    worker()->failCurrent();
  }
  batch_ = nullptr;
}

int LuaInstance::nextMessage(double* handle, const char** data, size_t* len) {
  MessageBatch& b = *batch_;
  if (b.next == b.count || !worker()->currentOpen()) return 0;
  const InboundMessage& m = b.items[b.next++];
  *handle = double(b.handle);
  *data = reinterpret_cast<const char*>(m.data);
  *len = m.len;
  return m.opcode;
}

void LuaInstance::messageReturnedFalse() {
  log(LogLevel::Warn, "onMessage returned false");
  worker()->failCurrent();
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
