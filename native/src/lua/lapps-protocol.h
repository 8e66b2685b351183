// The LAppS protocol (LAPPS-COMPAT.md): CBOR maps over binary frames, JSON-RPC style.
// Inbound messages are decoded straight into Lua tables, validated and classified for
// onMessage(handler, msg_type, message); bad input is answered with a JSON-RPC error on
// channel 0 and never reaches the service. Outbound objects (ws:send, bcast:send) are
// checked against the spec before they are encoded.
//
// Extension (docs/protocol.md): a request may carry `id` (integer or string); its response
// carries the same id. A service that sets `id` in a response answers that request (in any
// order); one that does not answers the request its handler was given, if that is still open,
// else the oldest one still open (LAppS's order).
#pragma once

#include <cstdint>
#include <deque>
#include <string>

struct lua_State;

namespace lapps {

class LuaInstance;

// Message types handed to onMessage (LAppS numbering).
enum LappsMessageType : int {
  kNotification = 1,
  kNotificationWithParams = 2,
  kRequest = 3,
  kRequestWithParams = 4,
};

// JSON-RPC error codes used by the server.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;

// Invalid messages one connection may send before it is closed with 1008.
inline constexpr uint32_t kMaxInvalidMessages = 10;

// Per-connection protocol state, kept by the instance.
struct LappsConnection {
  // Requests still to be answered, oldest first: their ids (nil = the request had none).
  struct Pending {
    enum Kind : uint8_t { kNone, kInt, kText } kind = kNone;
    int64_t number = 0;
    std::string text;
    uint64_t seq = 0;  // order of arrival on the connection
  };
  std::deque<Pending> pending;
  uint64_t lastSeq = 0;  // the request handed to onMessage most recently
  uint32_t invalid = 0;
};

// Registers the C functions the LAppS dispatcher and ws/bcast wrappers use, in the registry
// (lapps.protocol.classify, lapps.protocol.send, lapps.protocol.oon).
void registerLappsProtocol(lua_State* L, LuaInstance* instance);

}  // namespace lapps
