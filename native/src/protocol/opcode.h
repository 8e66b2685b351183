// WebSocket frame opcodes (RFC 6455 §5.2). Values are the wire values; 3-7 and 11-15 are
// reserved and never represented here (the parser rejects them before building an Opcode).
#pragma once

#include <cstdint>

namespace lapps {

enum class Opcode : uint8_t {
  Continuation = 0,
  Text = 1,
  Binary = 2,
  Close = 8,
  Ping = 9,
  Pong = 10,
};

// Control frames are the opcodes with the high bit of the nibble set (RFC 6455 §5.5).
inline bool isControl(Opcode op) {
  return (static_cast<uint8_t>(op) & 0x8) != 0;
}

}  // namespace lapps
