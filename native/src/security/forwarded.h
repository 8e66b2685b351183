// The client behind trusted proxies (trusted_proxies): a balancer or reverse proxy in front
// of lapps connects from its own address and names the client in X-Forwarded-For or
// Forwarded (RFC 7239). Those headers are believed only from a peer in `trusted`, and only
// as far as the chain of trusted proxies goes: walking the list from the right (the entry
// the nearest proxy added), the client is the first address that is not itself a trusted
// proxy. A malformed entry (or RFC 7239's "unknown" or an obfuscated name) ends the walk:
// the last trusted hop before it is the client, since nothing further can be believed.
// Pure: no I/O, no allocation.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <string_view>

#include "security/acl.h"

namespace lapps {

union ForwardedAddress {
  sockaddr sa;
  sockaddr_in v4;
  sockaddr_in6 v6;
};

// X-Forwarded-For first (repeated headers joined with ", "), else Forwarded. Returns false
// when `peer` is not a trusted proxy or neither header names anyone: the peer stands. On true,
// `client` is the client's address (port 0: the headers' ports are the proxies' business).
bool forwardedClient(const Acl& trusted, const sockaddr* peer, std::string_view xForwardedFor,
                     std::string_view forwarded, ForwardedAddress& client);

}  // namespace lapps
