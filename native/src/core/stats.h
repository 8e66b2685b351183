// Counters per worker, in one native block that Node reads as a BigUint64Array without
// copies. Only the owning worker writes a row; readers may see a counter a moment old.
#pragma once

#include <atomic>
#include <cstdint>

namespace lapps {

enum class Counter : uint32_t {
  ConnectionsOpen,      // gauge: sockets this worker holds
  ConnectionsAccepted,  // total accepted (or adopted)
  HandshakesOk,
  HandshakesFailed,
  MessagesIn,
  MessagesOut,
  BytesIn,
  BytesOut,
  ProtocolErrors,
  ServiceErrors,
  SlowConsumers,
  Timeouts,
  // Refusals, one counter per limit or policy (docs/config.md lists the responses).
  AclRefusedAtAccept,     // server-wide ACL: closed at accept
  AclRefusedAtHandshake,  // service ACL: 403 before the 101
  OriginRefused,          // Origin policy: 403
  ConnectionLimit,        // limits.max_connections: 503 / closed
  PerIpConnectionLimit,   // limits.max_connections_per_ip: 503 / closed
  PerIpRateLimit,         // limits.max_new_connections_per_ip_per_second: 429 / closed
  HeaderLimit,            // request head over max_header_size or max_headers: 431
  HandshakeTimeouts,      // handshake_timeout_ms: 408
  IdleTimeouts,           // idle_timeout_ms: 1001
  MessageTooBig,          // max_message_size: 1009
  FrameTooBig,            // max_frame_size: 1009
  TooManyFragments,       // max_fragments: 1008
  TlsHandshakesFailed,    // TLS handshake failed (bad client hello, client certificate, ...)
  MessagesAfterClose,     // data messages that arrived after our close frame: discarded
  ConnectRefused,         // refused by the service's onConnect (its status, or 500 on error)
  ConnectTimeouts,        // onConnect did not answer within handshake_timeout_ms: 503
  ProxyHeaderRefused,     // proxy_protocol listener: PROXY header malformed, missing or late
  TlsRecordLayer,         // wss connections moved from OpenSSL to our TLS 1.3 record layer
  TlsRecordErrors,        // ... closed for a record that failed (bad tag, not allowed, too big)
  kCount,
};

constexpr uint32_t kCounterCount = uint32_t(Counter::kCount);

struct WorkerStats {
  std::atomic<uint64_t> v[kCounterCount];

  // Single writer: a relaxed load + store is enough and avoids a locked instruction.
  void add(Counter c, uint64_t n = 1) {
    auto& x = v[uint32_t(c)];
    x.store(x.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(Counter c, uint64_t n = 1) {
    auto& x = v[uint32_t(c)];
    x.store(x.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
};

static_assert(sizeof(WorkerStats) == kCounterCount * sizeof(uint64_t));

}  // namespace lapps
