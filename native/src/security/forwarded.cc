#include "security/forwarded.h"

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>

#include "base/text.h"

namespace lapps {

namespace {

bool parseIp(std::string_view text, ForwardedAddress& out) {
  char buf[INET6_ADDRSTRLEN];
  if (text.empty() || text.size() >= sizeof(buf)) return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  std::memset(&out, 0, sizeof(out));
  if (::inet_pton(AF_INET, buf, &out.v4.sin_addr) == 1) {
    out.v4.sin_family = AF_INET;
    return true;
  }
  if (::inet_pton(AF_INET6, buf, &out.v6.sin6_addr) == 1) {
    out.v6.sin6_family = AF_INET6;
    return true;
  }
  return false;
}

bool isPort(std::string_view s) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + uint32_t(c - '0');
  }
  return v <= 65535;
}

// One node: "a.b.c.d", "a.b.c.d:port", "x::y", "[x::y]" or "[x::y]:port".
bool parseNode(std::string_view node, ForwardedAddress& out) {
  if (!node.empty() && node.front() == '[') {
    const size_t close = node.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view rest = node.substr(close + 1);
    if (!rest.empty() && !(rest.front() == ':' && isPort(rest.substr(1)))) return false;
    return parseIp(node.substr(1, close - 1), out) && out.sa.sa_family == AF_INET6;
  }
  const size_t colon = node.find(':');
  if (colon != std::string_view::npos && node.find(':', colon + 1) == std::string_view::npos) {
    // One colon: IPv4 with a port.
    if (!isPort(node.substr(colon + 1))) return false;
    return parseIp(node.substr(0, colon), out) && out.sa.sa_family == AF_INET;
  }
  return parseIp(node, out);
}

// The for= node of one Forwarded element ("for=1.2.3.4;proto=https"), unquoted.
bool forNode(std::string_view element, std::string_view& node) {
  while (!element.empty()) {
    const size_t semi = element.find(';');
    std::string_view pair = trimOws(element.substr(0, semi));
    element = semi == std::string_view::npos ? std::string_view() : element.substr(semi + 1);
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = trimOws(pair.substr(0, eq));
    if (name.size() != 3 || (name[0] | 0x20) != 'f' || (name[1] | 0x20) != 'o' ||
        (name[2] | 0x20) != 'r') {
      continue;
    }
    std::string_view value = trimOws(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    node = value;
    return true;
  }
  return false;
}

// Walks `list` (comma-separated) from the right. `nodeOf` extracts the node text of one
// entry (false: the entry names no node).
template <class NodeOf>
bool walk(const Acl& trusted, std::string_view list, const sockaddr* peer, NodeOf nodeOf,
          ForwardedAddress& client) {
  bool found = false;
  std::memcpy(&client, peer,
              peer->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  while (!list.empty()) {
    const size_t comma = list.rfind(',');
    std::string_view entry =
        trimOws(comma == std::string_view::npos ? list : list.substr(comma + 1));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(0, comma);
    std::string_view node;
    ForwardedAddress addr;
    if (!nodeOf(entry, node) || !parseNode(node, addr)) break;  // nothing beyond is believed
    client = addr;
    found = true;
    if (!trusted.allows(&addr.sa)) break;  // the first untrusted hop is the client
  }
  if (found) {
    if (client.sa.sa_family == AF_INET) client.v4.sin_port = 0;
    if (client.sa.sa_family == AF_INET6) client.v6.sin6_port = 0;
  }
  return found;
}

}  // namespace

bool forwardedClient(const Acl& trusted, const sockaddr* peer, std::string_view xForwardedFor,
                     std::string_view forwarded, ForwardedAddress& client) {
  if (!trusted.allows(peer)) return false;  // an untrusted peer's headers are ignored
  if (!trimOws(xForwardedFor).empty()) {
    return walk(
        trusted, xForwardedFor, peer,
        [](std::string_view entry, std::string_view& node) {
          node = entry;
          return true;
        },
        client);
  }
  if (!trimOws(forwarded).empty()) return walk(trusted, forwarded, peer, forNode, client);
  return false;
}

}  // namespace lapps
