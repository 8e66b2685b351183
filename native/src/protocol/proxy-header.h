// The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2): what a load
// balancer that forwards TCP sends before the client's first byte, naming the client it
// accepted. Pure: no I/O, no allocation; the caller feeds what it has read so far.
//
//   v1: "PROXY TCP4 <src> <dst> <srcport> <dstport>\r\n" (or TCP6, or "PROXY UNKNOWN...\r\n"),
//       at most 107 bytes.
//   v2: a 12-byte signature, version/command, family/transport, a 16-bit length, then the
//       addresses and optional TLVs (skipped).
//
// A connection from a balancer itself (v2 LOCAL, v1 UNKNOWN, or an address family other
// than IPv4/IPv6) carries no client address: `hasClient` is false and the socket's own peer
// stands.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lapps {

struct ProxyAddress {
  bool v6 = false;
  uint8_t addr[16] = {};  // IPv4 in addr[0..3], network order
  uint16_t port = 0;      // host order
};

struct ProxyHeader {
  uint8_t version = 0;     // 1 or 2
  bool hasClient = false;  // source and destination are set
  ProxyAddress source;     // the client
  ProxyAddress destination;
  size_t length = 0;  // bytes the header took: the client's bytes start there
};

enum class ProxyParse : uint8_t {
  NeedMore,  // a valid prefix so far: read more (bounded by kMaxProxyHeader)
  Done,      // `out` is set
  Invalid,   // not a PROXY header, or a malformed one: `why` says what
};

// The most a header may take here: v1's 107 bytes, or v2's 16 + addresses + TLVs. TLVs
// beyond this (no balancer sends kilobytes of them) make the header Invalid.
inline constexpr size_t kMaxProxyHeader = 1024;

// Parses the start of a connection's bytes. `why` is a static string (never null on Invalid).
ProxyParse parseProxyHeader(const uint8_t* data, size_t len, ProxyHeader& out, const char*& why);

}  // namespace lapps
