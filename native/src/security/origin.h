// Origin policy of a service: which web pages may open WebSockets to it. Browsers send the
// page's origin with every WebSocket handshake and, unlike for fetch, never enforce CORS on
// the answer; without this check any site a user visits could connect with the user's
// cookies (cross-site WebSocket hijacking). Non-browser clients usually send no Origin.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lapps {

// A parsed serialized origin (RFC 6454 §6.2): scheme "://" host [":" port], lower case, the
// port filled in from the scheme when absent (http/ws 80, https/wss 443, else 0).
struct Origin {
  std::string scheme;
  std::string host;  // IPv6 literals keep their brackets
  uint16_t port = 0;
};

// Parses an Origin header value; false for "null", for anything with a path, user info,
// query or fragment, and for malformed text.
bool parseOrigin(std::string_view text, Origin& out);

class OriginPolicy {
 public:
  // No list configured: the Origin must name the host the client connected to (its Host
  // header), on any scheme; a request without Origin is let in if `allowMissing`.
  static OriginPolicy sameOrigin(bool allowMissing);
  // `patterns`: "*" (any origin), "null" (opaque origins: file: pages, sandboxed frames),
  // "scheme://host[:port]" exact, or "scheme://*.domain[:port]" for any subdomain of domain
  // (not the domain itself). With `alsoSameOrigin` the same origin is allowed as well.
  // Returns false with `error` naming the bad pattern.
  static bool fromList(const std::vector<std::string>& patterns, bool allowMissing,
                       OriginPolicy& out, std::string& error, bool alsoSameOrigin = false);

  // `origin` is the raw Origin header (empty when absent), `host` the Host header, `tls`
  // whether the connection came over TLS (the Host header's default port).
  bool allows(std::string_view origin, std::string_view host, bool tls) const;

 private:
  struct Wildcard {
    std::string scheme;
    std::string suffix;  // ".example.com"
    uint16_t port;
  };
  bool sameOrigin_ = true;
  bool any_ = false;
  bool allowNull_ = false;
  bool allowMissing_ = true;
  std::vector<Origin> exact_;
  std::vector<Wildcard> wildcards_;
};

}  // namespace lapps
