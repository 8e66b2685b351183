// A client's address as text: "203.0.113.7" or "2001:db8::1" (an IPv4-mapped IPv6 address
// is shown as the IPv4 address it maps), and its port. IPv4, the common case on every
// handshake that a service or the access log reads, is formatted here without inet_ntop
// (glibc's goes through sprintf: a few hundred instructions for a dozen characters).
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/peer-address.h"

namespace lapps {

inline constexpr size_t kPeerIpBytes = INET6_ADDRSTRLEN;

// Writes the address into buf (kPeerIpBytes) and returns it; "" for no address.
inline std::string_view peerIp(const PeerAddress& p, char (&buf)[kPeerIpBytes]) {
  const uint8_t* v4 = nullptr;
  if (p.sa.sa_family == AF_INET) {
    v4 = reinterpret_cast<const uint8_t*>(&p.v4.sin_addr);
  } else if (p.sa.sa_family == AF_INET6) {
    if (!IN6_IS_ADDR_V4MAPPED(&p.v6.sin6_addr)) {
      if (!inet_ntop(AF_INET6, &p.v6.sin6_addr, buf, kPeerIpBytes)) return {};
      return buf;
    }
    v4 = p.v6.sin6_addr.s6_addr + 12;
  } else {
    return {};
  }
  size_t n = 0;
  for (int i = 0; i < 4; ++i) {
    unsigned b = v4[i];
    if (b >= 100) buf[n++] = char('0' + b / 100);
    if (b >= 10) buf[n++] = char('0' + b / 10 % 10);
    buf[n++] = char('0' + b % 10);
    if (i < 3) buf[n++] = '.';
  }
  buf[n] = 0;
  return std::string_view(buf, n);
}

inline std::string peerIp(const PeerAddress& p) {
  char buf[kPeerIpBytes];
  return std::string(peerIp(p, buf));
}

inline uint16_t peerPort(const PeerAddress& p) {
  if (p.sa.sa_family == AF_INET) return ntohs(p.v4.sin_port);
  if (p.sa.sa_family == AF_INET6) return ntohs(p.v6.sin6_port);
  return 0;
}

}  // namespace lapps
