// Why a connection (or a message) counted as an error. Every kind is reported by name in
// the final JSON ("error_detail"); "errors" is their sum.
#pragma once

#include <cstdint>

namespace loadgen {

enum class ErrorKind : uint8_t {
  kConnect,    // socket()/bind()/connect() failed, e.g. no listener or no free port
  kTimeout,    // connect + handshake did not finish within --timeout
  kTls,        // --tls: the TLS handshake failed (alert, bad record, dropped during it)
  kHandshake,  // not a 101, wrong Sec-WebSocket-Accept, or an oversized response
  kClosed,     // the server sent a close frame
  kEof,        // the server closed the TCP connection
  kIo,         // read()/write() failed (ECONNRESET, EPIPE, ...)
  kProtocol,   // a server frame broke RFC 6455 (masked, reserved bits, bad opcode, ...)
  kEcho,       // an echoed message had the wrong size, or arrived with none in flight
  kCount,
};

inline constexpr const char* kErrorNames[] = {
    "connect", "timeout", "tls", "handshake", "closed", "eof", "io", "protocol", "echo",
};
static_assert(sizeof(kErrorNames) / sizeof(kErrorNames[0]) == size_t(ErrorKind::kCount));

}  // namespace loadgen
