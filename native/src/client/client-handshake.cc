#include "client/client-handshake.h"

#include <openssl/evp.h>

#include "base/text.h"
#include "client/mask-rng.h"
#include "protocol/handshake-response.h"

namespace lapps {

namespace {

// RFC 9110 §5.6.2 tchar.
bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// True if the comma-separated list `value` holds `token` (case-insensitive).
bool listHas(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (equalsIgnoreCase(trimOws(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

constexpr std::string_view kReservedHeaders[] = {
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "sec-websocket-accept",
};

}  // namespace

std::string makeWsKey() {
  unsigned char raw[16];
  if (!secureRandom(raw, sizeof raw)) {
    // Only uniqueness matters for the key (it is not a secret): the masking generator will do.
    MaskRng rng;
    for (size_t i = 0; i < sizeof raw; i += 4) {
      const uint32_t v = rng.next();
      for (size_t j = 0; j < 4; ++j) raw[i + j] = static_cast<unsigned char>(v >> (8 * j));
    }
  }
  char text[25];
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text), raw, sizeof raw);
  return std::string(text, 24);
}

bool checkHandshakeOptions(const std::vector<std::string>& protocols, const HeaderList& headers,
                           std::string& err) {
  for (size_t i = 0; i < protocols.size(); ++i) {
    if (!isToken(protocols[i])) {
      err = concatText({"invalid subprotocol name '", protocols[i], "'"});
      return false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (protocols[j] == protocols[i]) {
        err = concatText({"subprotocol '", protocols[i], "' offered twice"});
        return false;
      }
    }
  }
  for (const auto& [name, value] : headers) {
    if (!isToken(name)) {
      err = concatText({"invalid header name '", name, "'"});
      return false;
    }
    for (std::string_view reserved : kReservedHeaders) {
      if (equalsIgnoreCase(name, reserved)) {
        err = concatText({"header '", name, "' is set by the WebSocket handshake itself"});
        return false;
      }
    }
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      err = concatText({"invalid character in the value of header '", name, "'"});
      return false;
    }
  }
  return true;
}

void appendClientHandshake(std::string& out, const WsUrl& url, std::string_view key,
                           const std::vector<std::string>& protocols, const HeaderList& headers) {
  out.append("GET ").append(url.path).append(" HTTP/1.1\r\nHost: ").append(url.hostHeader);
  out.append(
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: ");
  out.append(key).append("\r\n");
  if (!protocols.empty()) {
    out.append("Sec-WebSocket-Protocol: ");
    for (size_t i = 0; i < protocols.size(); ++i) {
      if (i) out.append(", ");
      out.append(protocols[i]);
    }
    out.append("\r\n");
  }
  for (const auto& [name, value] : headers)
    out.append(name).append(": ").append(trimOws(value)).append("\r\n");
  out.append("\r\n");
}

size_t findHeadEnd(std::string_view buf, size_t from) {
  const size_t at = buf.find("\r\n\r\n", from > 3 ? from - 3 : 0);
  return at == std::string_view::npos ? 0 : at + 4;
}

bool checkServerHandshake(std::string_view head, std::string_view key,
                          const std::vector<std::string>& offered, std::string& protocol,
                          std::string& err) {
  protocol.clear();
  size_t eol = head.find("\r\n");
  const std::string_view status = head.substr(0, eol);
  // "HTTP/1.1 101 Switching Protocols"; the reason phrase is free text.
  if (status.size() < 12 || status.substr(0, 7) != "HTTP/1." || status[8] != ' ' ||
      (status.size() > 12 && status[12] != ' ')) {
    err = "malformed HTTP status line in handshake response";
    return false;
  }
  const std::string_view code = status.substr(9, 3);
  if (code != "101") {
    for (char c : code) {
      if (c < '0' || c > '9') {
        err = "malformed HTTP status line in handshake response";
        return false;
      }
    }
    std::string_view reason = status.size() > 13 ? status.substr(13) : "";
    if (reason.size() > 80) reason = reason.substr(0, 80);
    err = concatText(
        {"server answered HTTP ", code, reason.empty() ? "" : " ", reason, " instead of 101"});
    return false;
  }

  bool upgrade = false, connection = false;
  int accepts = 0, protocols = 0;
  std::string_view accept, selected;
  size_t pos = eol + 2;
  for (;;) {
    eol = head.find("\r\n", pos);
    if (eol == std::string_view::npos || eol == pos) break;  // blank line: end of head
    const std::string_view line = head.substr(pos, eol - pos);
    pos = eol + 2;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || line[0] == ' ' || line[0] == '\t') {
      err = "malformed header line in handshake response";
      return false;
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trimOws(line.substr(colon + 1));
    if (equalsIgnoreCase(name, "upgrade")) {
      upgrade = upgrade || listHas(value, "websocket");
    } else if (equalsIgnoreCase(name, "connection")) {
      connection = connection || listHas(value, "upgrade");
    } else if (equalsIgnoreCase(name, "sec-websocket-accept")) {
      ++accepts;
      accept = value;
    } else if (equalsIgnoreCase(name, "sec-websocket-protocol")) {
      ++protocols;
      selected = value;
    } else if (equalsIgnoreCase(name, "sec-websocket-extensions")) {
      if (!value.empty()) {
        err = "server selected an extension that was not offered";
        return false;
      }
    }
  }
  if (!upgrade) {
    err = "handshake response lacks 'Upgrade: websocket'";
    return false;
  }
  if (!connection) {
    err = "handshake response lacks 'Connection: Upgrade'";
    return false;
  }
  if (accepts != 1 || accept != acceptKey(key)) {
    err = accepts == 0 ? "handshake response lacks Sec-WebSocket-Accept"
                       : "wrong Sec-WebSocket-Accept in handshake response";
    return false;
  }
  if (protocols > 1) {
    err = "server selected more than one subprotocol";
    return false;
  }
  if (protocols == 1) {
    bool known = false;
    for (const std::string& p : offered) known = known || p == selected;
    if (!known) {
      err = concatText({"server selected subprotocol '", selected, "' that was not offered"});
      return false;
    }
    protocol.assign(selected);
  }
  return true;
}

}  // namespace lapps
