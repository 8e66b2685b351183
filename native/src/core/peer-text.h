// A client's address as text: "203.0.113.7" or "2001:db8::1" (an IPv4-mapped IPv6 address
// is shown as the IPv4 address it maps), and its port.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "core/peer-address.h"

namespace lapps {

inline std::string peerIp(const PeerAddress& p) {
  char text[INET6_ADDRSTRLEN] = "";
  if (p.sa.sa_family == AF_INET) {
    inet_ntop(AF_INET, &p.v4.sin_addr, text, sizeof text);
  } else if (p.sa.sa_family == AF_INET6) {
    if (IN6_IS_ADDR_V4MAPPED(&p.v6.sin6_addr)) {
      in_addr v4;
      std::memcpy(&v4, &p.v6.sin6_addr.s6_addr[12], 4);
      inet_ntop(AF_INET, &v4, text, sizeof text);
    } else {
      inet_ntop(AF_INET6, &p.v6.sin6_addr, text, sizeof text);
    }
  }
  return text;
}

inline uint16_t peerPort(const PeerAddress& p) {
  if (p.sa.sa_family == AF_INET) return ntohs(p.v4.sin_port);
  if (p.sa.sa_family == AF_INET6) return ntohs(p.v6.sin6_port);
  return 0;
}

}  // namespace lapps
