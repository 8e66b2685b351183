// Where a connection is in its life. Its own header: a service instance checks, once per
// message, that the connection whose batch it delivers is still Open (MessageBatch::open),
// without seeing the rest of the Connection.
#pragma once

#include <cstdint>

namespace lapps {

enum class ConnState : uint8_t {
  Handshake,  // reading the HTTP upgrade request
  Open,       // frames flow both ways
  Closing,    // we sent a close frame; waiting for the peer's, discarding data frames
  Draining,   // our side is done (FIN after the last byte); discarding input until EOF
  Dead,       // torn down at the end of the current event batch
  // proxy_protocol listener: reading the PROXY header, before TLS and HTTP (Handshake next).
  ProxyHeader,
};

}  // namespace lapps
