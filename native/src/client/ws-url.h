// ws:// and wss:// URLs (RFC 6455 §3), and http:// and https:// ones (RFC 9110 §4.2), split into
// what the client needs to connect and to write its opening handshake.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lapps {

struct WsUrl {
  bool secure = false;     // wss://
  std::string host;        // lower-cased; IPv6 literal without brackets
  uint16_t port = 0;       // 80 / 443 when the URL gives none
  std::string path;        // path and query as sent in the request line, "/" at least
  std::string hostHeader;  // Host header value: brackets for IPv6, port only if not default
};

// Parses `url` into `out`. On failure returns false and sets `err`; `out` is then
// unspecified. Rejects other schemes, credentials, fragments (RFC 6455 §3), empty hosts,
// ports outside 1-65535 and characters that cannot go into a request line.
bool parseWsUrl(std::string_view url, WsUrl& out, std::string& err);

// The same for http:// and https:// URLs (lapps.http); a fragment is dropped, not refused.
bool parseHttpUrl(std::string_view url, WsUrl& out, std::string& err);

}  // namespace lapps
