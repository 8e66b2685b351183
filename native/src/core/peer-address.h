// A client's address, IPv4 or IPv6, in 28 bytes (sockaddr_storage would take 128 for
// every connection held).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

namespace lapps {

union PeerAddress {
  sockaddr sa;
  sockaddr_in v4;
  sockaddr_in6 v6;
};

}  // namespace lapps
