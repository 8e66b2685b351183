// Server-to-client frame headers and close payloads (RFC 6455 §5.2, §5.5.1). Server frames
// are never masked, so a header is at most 10 bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "protocol/close-code.h"
#include "protocol/opcode.h"

namespace lapps {

inline constexpr size_t kMaxHeaderSize = 10;
inline constexpr size_t kMaxCloseReason = 123;  // 125-byte control payload minus the code

// Writes the header for a frame of payloadLen bytes to out (>= kMaxHeaderSize bytes) and
// returns its size (2, 4 or 10), always using the shortest length encoding.
// Precondition: control frames have payloadLen <= 125 and fin set.
inline size_t encodeHeader(uint8_t* out, Opcode op, uint64_t payloadLen, bool fin = true) {
  out[0] = static_cast<uint8_t>((fin ? 0x80 : 0) | static_cast<uint8_t>(op));
  if (payloadLen < 126) {
    out[1] = static_cast<uint8_t>(payloadLen);
    return 2;
  }
  if (payloadLen <= 0xFFFF) {
    out[1] = 126;
    out[2] = static_cast<uint8_t>(payloadLen >> 8);
    out[3] = static_cast<uint8_t>(payloadLen);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(payloadLen >> (56 - 8 * i));
  return 10;
}

// Writes a close payload (big-endian code + reason) to out (>= 125 bytes) and returns its
// size. The reason is cut to 123 bytes without splitting a UTF-8 sequence (precondition:
// reason is valid UTF-8). kNoStatus means "no code": the payload is then empty.
inline size_t encodeClosePayload(uint8_t* out, uint16_t code, std::string_view reason) {
  if (code == kNoStatus) return 0;
  out[0] = static_cast<uint8_t>(code >> 8);
  out[1] = static_cast<uint8_t>(code);
  size_t n = reason.size();
  if (n > kMaxCloseReason) {
    n = kMaxCloseReason;
    // Back off continuation bytes (10xxxxxx) so the cut lands before a lead byte.
    while (n > 0 && (static_cast<uint8_t>(reason[n]) & 0xC0) == 0x80) --n;
  }
  if (n != 0) std::memcpy(out + 2, reason.data(), n);
  return 2 + n;
}

}  // namespace lapps
