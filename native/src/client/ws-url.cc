#include "client/ws-url.h"

#include <arpa/inet.h>

#include "base/text.h"

namespace lapps {

namespace {

// Characters allowed in a registered name or IPv4 literal: RFC 3986 unreserved and
// sub-delims, less those that only make sense in URLs of other schemes. Percent-encoded
// names are not supported (no IDNA here: callers pass punycode).
bool isHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Anything visible except what would break the request line or is not part of a URL.
bool isPathChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7F && c != '"' && c != '<' && c != '>' && c != '\\' && c != '^' &&
         c != '`' && c != '{' && c != '|' && c != '}';
}

// The URL after its scheme (out.secure already set): authority, path and query.
bool parseAfterScheme(std::string_view rest, WsUrl& out, std::string& err) {
  const size_t authEnd = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authEnd);
  std::string_view path = authEnd == std::string_view::npos ? "" : rest.substr(authEnd);
  if (authority.find('@') != std::string_view::npos) {
    err = "credentials in the URL are not supported";
    return false;
  }

  // Host: a bracketed IPv6 literal or a name / IPv4 literal, then an optional ":port".
  std::string_view host, portText;
  bool hasPort = false;
  bool ipv6 = false;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      err = "unterminated IPv6 address in URL";
      return false;
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        err = "unexpected characters after the IPv6 address";
        return false;
      }
      hasPort = true;
      portText = after.substr(1);
    }
    in6_addr a;
    const std::string literal(host);
    if (!literal.empty() && inet_pton(AF_INET6, literal.c_str(), &a) != 1) {
      err = "invalid IPv6 address in URL";
      return false;
    }
    ipv6 = true;
  } else {
    const size_t c = authority.rfind(':');
    host = authority.substr(0, c);
    if (c != std::string_view::npos) {
      hasPort = true;
      portText = authority.substr(c + 1);
    }
    for (char ch : host) {
      if (!isHostChar(ch)) {
        err = "invalid character in URL host";
        return false;
      }
    }
  }
  if (host.empty()) {
    err = "URL has no host";
    return false;
  }

  const uint16_t defaultPort = out.secure ? 443 : 80;
  uint32_t port = defaultPort;
  if (hasPort && !portText.empty()) {
    if (portText.size() > 5) {
      err = "URL port out of range";
      return false;
    }
    port = 0;
    for (char ch : portText) {
      if (ch < '0' || ch > '9') {
        err = "invalid URL port";
        return false;
      }
      port = port * 10 + static_cast<uint32_t>(ch - '0');
    }
    if (port == 0 || port > 65535) {
      err = "URL port out of range";
      return false;
    }
  }

  for (char ch : path) {
    if (!isPathChar(ch)) {
      err = "invalid character in URL path (percent-encode it)";
      return false;
    }
  }

  out.host.clear();
  for (char ch : host) out.host.push_back(asciiLower(ch));
  out.port = static_cast<uint16_t>(port);
  out.path = concatText({path.empty() || path[0] == '?' ? "/" : "", path});
  out.hostHeader = ipv6 ? concatText({"[", out.host, "]"}) : out.host;
  if (port != defaultPort) out.hostHeader.append(":").append(std::to_string(port));
  return true;
}

}  // namespace

bool parseWsUrl(std::string_view url, WsUrl& out, std::string& err) {
  const size_t colon = url.find("://");
  if (colon == std::string_view::npos) {
    err = "not an absolute URL (expected ws:// or wss://)";
    return false;
  }
  const std::string_view scheme = url.substr(0, colon);
  if (equalsIgnoreCase(scheme, "ws")) {
    out.secure = false;
  } else if (equalsIgnoreCase(scheme, "wss")) {
    out.secure = true;
  } else {
    err = concatText({"unsupported URL scheme '", scheme, "' (expected ws or wss)"});
    return false;
  }
  std::string_view rest = url.substr(colon + 3);
  if (rest.find('#') != std::string_view::npos) {
    err = "WebSocket URLs must not have a fragment";
    return false;
  }
  return parseAfterScheme(rest, out, err);
}

bool parseHttpUrl(std::string_view url, WsUrl& out, std::string& err) {
  const size_t colon = url.find("://");
  if (colon == std::string_view::npos) {
    err = "not an absolute URL (expected http:// or https://)";
    return false;
  }
  const std::string_view scheme = url.substr(0, colon);
  if (equalsIgnoreCase(scheme, "http")) {
    out.secure = false;
  } else if (equalsIgnoreCase(scheme, "https")) {
    out.secure = true;
  } else {
    err = concatText({"unsupported URL scheme '", scheme, "' (expected http or https)"});
    return false;
  }
  // The fragment is the client's own business (RFC 9110 §7.1): never sent.
  return parseAfterScheme(url.substr(colon + 3, url.find('#') - colon - 3), out, err);
}

}  // namespace lapps
