// WebSocket close status codes (RFC 6455 §7.4 and the IANA registry).
#pragma once

#include <cstdint>

namespace lapps {

// Codes the server sends or reports. 1005 and 1006 are never sent on the wire: they only
// describe "close frame had no code" and "connection dropped without a close frame".
inline constexpr uint16_t kNormal = 1000;
inline constexpr uint16_t kGoingAway = 1001;
inline constexpr uint16_t kProtocolError = 1002;
inline constexpr uint16_t kUnsupportedData = 1003;
inline constexpr uint16_t kNoStatus = 1005;
inline constexpr uint16_t kAbnormal = 1006;
inline constexpr uint16_t kInvalidPayload = 1007;
inline constexpr uint16_t kPolicy = 1008;
inline constexpr uint16_t kTooBig = 1009;
inline constexpr uint16_t kInternalError = 1011;

// True if a peer may legitimately send `code` in a close frame. 1004 is reserved, 1005,
// 1006 and 1015 are local-only, 1016-2999 are unassigned protocol codes, 3000-4999 are for
// libraries and applications; anything else is a protocol error.
inline constexpr bool isValidCloseCode(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

}  // namespace lapps
