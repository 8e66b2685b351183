// Thin Lua wrappers over FFI entry points, as for `ws` (see api-ws.cc): the checks that
// Lua can do stay in Lua; the C side owns channel ids, handles and frame encoding.
#include "lua/api-bcast.h"

#include <lua.hpp>

#include <cstring>
#include <string_view>

#include "core/broadcast.h"
#include "core/handle.h"
#include "core/service-host.h"
#include "core/service-instance.h"
#include "core/shared-buffer.h"
#include "embedded-lua.h"
#include "lua/status-messages.h"
#include "protocol/frame-encoder.h"
#include "protocol/utf8-validator.h"

namespace lapps {

namespace {

// What the entry points answer: a status's C API code from the registry
// (core/service-host.h), or one of the checks of their own below. The Lua wrapper gets the
// message of each (lua/status-messages.h).
constexpr int kOk = sendStatusCode(SendStatus::Ok);
constexpr int kNoChannel = sendStatusCode(SendStatus::NoChannel);
constexpr int kNoConnection = sendStatusCode(SendStatus::NoConnection);
enum BcastResult : int {
  kBadChannel = kModuleResultBase,
  kTextNotUtf8,
};

// Channel ids are integers; LAppS services use small numbers.
bool toChannel(double v, uint64_t& out) {
  if (!(v >= 0 && v < 9007199254740992.0)) return false;
  out = uint64_t(v);
  return double(out) == v;
}

// subscribe, unsubscribe and broadcast answer Ok, NoChannel or NoConnection (nothing is
// queued to a connection, so it is never Closing or a SlowConsumer).
constexpr int fromStatus(SendStatus s) {
  return sendStatusCode(s);
}

// The instance's worker, or null for a standalone instance (whose broadcasts go through the
// server).
ServiceHost* workerOf(void* instance) {
  return static_cast<ServiceInstance*>(instance)->serviceHost();
}
SharedServices& serverOf(void* instance) {
  return *static_cast<ServiceInstance*>(instance)->shared();
}
uint32_t serviceOf(void* instance) {
  return static_cast<ServiceInstance*>(instance)->service();
}

// bcast:subscribe / bcast:unsubscribe: `change` is the ServiceHost call.
int changeMembership(void* instance, double id, double handle,
                     SendStatus (ServiceHost::*change)(uint32_t, uint64_t, uint64_t)) {
  uint64_t ch, h;
  if (!toChannel(id, ch)) return kBadChannel;
  if (!Handle::fromNumber(handle, h)) return kNoConnection;
  if (!serverOf(instance).channels().exists(ch)) return kNoChannel;
  // A standalone instance has no connections of its own: any handle is another service's.
  ServiceHost* w = workerOf(instance);
  return w ? fromStatus((w->*change)(serviceOf(instance), ch, h)) : kNoConnection;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int lapps_bcast_create(void* instance, double id) {
  uint64_t ch;
  if (!toChannel(id, ch)) return kBadChannel;
  serverOf(instance).channels().create(ch);
  return kOk;
}

__attribute__((visibility("default"))) int lapps_bcast_subscribe(void* instance, double id,
                                                                 double handle) {
  return changeMembership(instance, id, handle, &ServiceHost::subscribe);
}

__attribute__((visibility("default"))) int lapps_bcast_unsubscribe(void* instance, double id,
                                                                   double handle) {
  return changeMembership(instance, id, handle, &ServiceHost::unsubscribe);
}

__attribute__((visibility("default"))) int lapps_bcast_send(void* instance, double id, int opcode,
                                                            const char* data, size_t len) {
  uint64_t ch;
  if (!toChannel(id, ch)) return kBadChannel;
  const auto* bytes = reinterpret_cast<const uint8_t*>(data);
  if (opcode == 1 && !isValidUtf8(bytes, len)) return kTextNotUtf8;
  // Encoded once; every subscriber's queue shares this buffer.
  SharedBuffer* frame =
      encodeBroadcastFrame(opcode == 1 ? Opcode::Text : Opcode::Binary, bytes, len);
  ServiceHost* w = workerOf(instance);
  int rc =
      fromStatus(w ? w->broadcast(ch, frame) : serverOf(instance).broadcastFromOutside(ch, frame));
  frame->release();
  return rc;
}

}  // extern "C"

void pushBcastApi(lua_State* L, ServiceInstance* instance) {
  if (embedded::kBcast.load(L) != 0) lua_error(L);
  lua_pushlightuserdata(L, reinterpret_cast<void*>(&lapps_bcast_create));
  lua_pushlightuserdata(L, reinterpret_cast<void*>(&lapps_bcast_subscribe));
  lua_pushlightuserdata(L, reinterpret_cast<void*>(&lapps_bcast_unsubscribe));
  lua_pushlightuserdata(L, reinterpret_cast<void*>(&lapps_bcast_send));
  lua_pushlightuserdata(L, instance);
  lua_getfield(L, LUA_REGISTRYINDEX, "lapps.protocol.oon");
  pushStatusMessages(L, {{kBadChannel, "bad_channel", "channel id must be a non-negative integer"},
                         {kTextNotUtf8, nullptr,
                          "text message is not valid UTF-8 (send it as binary, opcode 2)"}});
  lua_call(L, 7, 1);
}

}  // namespace lapps
