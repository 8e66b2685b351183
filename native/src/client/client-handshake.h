// Client side of the opening handshake (RFC 6455 §4.1): the request, and the checks on the
// server's response. Pure functions: no I/O.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client/ws-url.h"

namespace lapps {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// A fresh Sec-WebSocket-Key: 16 random bytes (getrandom), base64 (24 chars).
std::string makeWsKey();

// Subprotocols must be distinct HTTP tokens; extra headers need token names, values
// without CR, LF or NUL, and must not be one the handshake sets itself (Host, Upgrade,
// Connection, Sec-WebSocket-*). False with `err` otherwise.
bool checkHandshakeOptions(const std::vector<std::string>& protocols, const HeaderList& headers,
                           std::string& err);

// Appends the GET request. Precondition: checkHandshakeOptions accepted the options.
void appendClientHandshake(std::string& out, const WsUrl& url, std::string_view key,
                           const std::vector<std::string>& protocols, const HeaderList& headers);

// Offset just past the blank line ending the response head in buf, or 0 if not there yet.
// `from`: bytes already searched (so a growing buffer is scanned once).
size_t findHeadEnd(std::string_view buf, size_t from);

// Checks a complete response head (status line to blank line): 101, Upgrade: websocket,
// Connection: upgrade, Sec-WebSocket-Accept matching key, a subprotocol only if one of
// `offered`, no extension. On success `protocol` is the server's choice (empty: none).
bool checkServerHandshake(std::string_view head, std::string_view key,
                          const std::vector<std::string>& offered, std::string& protocol,
                          std::string& err);

}  // namespace lapps
