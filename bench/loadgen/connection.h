// One client connection: its socket, where it is in its life, and its parser state.
// Mode-specific state (timestamps, counters) lives in the mode, indexed by `index`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "frame-reader.h"
#include "handshake.h"

namespace loadgen {

// kTlsHandshaking only with --tls: TCP is up, the TLS handshake is not done yet.
enum class ConnState : uint8_t { kNew, kConnecting, kTlsHandshaking, kHandshaking, kOpen, kDone };

// Bytes the socket did not take yet. Empty in steady state: it fills only under
// backpressure and is drained on EPOLLOUT before anything new is written.
struct PendingBytes {
  std::vector<uint8_t> bytes;
  size_t sent = 0;

  bool empty() const { return sent == bytes.size(); }
  void append(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  void clear() {
    bytes.clear();
    sent = 0;
  }
};

struct Conn {
  int fd = -1;
  uint32_t index = 0;
  ConnState state = ConnState::kNew;
  uint64_t startedNs = 0;                // when connect() was called
  char key[kKeyLen];                     // Sec-WebSocket-Key, until the 101 is checked
  std::unique_ptr<std::string> partial;  // response bytes while the 101 is incomplete
  PendingBytes pending;
  FrameReader reader;

  bool inFlight() const {
    return state == ConnState::kConnecting || state == ConnState::kTlsHandshaking ||
           state == ConnState::kHandshaking;
  }
};

}  // namespace loadgen
