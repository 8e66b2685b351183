// The client side of the opening handshake (RFC 6455 §4.1): the request is built once per
// run around a per-connection key; the response must be a 101 with "Upgrade: websocket",
// a "Connection" header holding "upgrade", and the Sec-WebSocket-Accept matching the key.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "xoshiro.h"

namespace loadgen {

inline constexpr size_t kKeyLen = 24;  // base64 of 16 bytes
// A response whose headers do not end within this many bytes fails the handshake.
inline constexpr size_t kMaxResponse = 16384;

class HandshakeRequest {
 public:
  HandshakeRequest(std::string_view host, unsigned port, std::string_view path);

  // A fresh random Sec-WebSocket-Key.
  static void makeKey(Xoshiro256& rng, char key[kKeyLen]);
  // Three iovecs: the request with `key` in place (valid while key and *this live).
  void iov(const char key[kKeyLen], iovec out[3]) const;

 private:
  std::string head_;  // request line and headers up to "Sec-WebSocket-Key: "
  static constexpr std::string_view kTail = "\r\n\r\n";
};

enum class ResponseStatus { kIncomplete, kOk, kFailed };

// Checks the response in data[0..len). On kOk, *headerLen is the size up to and including
// the blank line (frames may follow it).
ResponseStatus checkResponse(const char* data, size_t len, const char key[kKeyLen],
                             size_t* headerLen);

}  // namespace loadgen
