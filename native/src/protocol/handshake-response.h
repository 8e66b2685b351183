// Server side of the opening handshake: the 101 response and canned HTTP error responses.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lapps {

// Sec-WebSocket-Accept for a client key: base64(SHA-1(key + RFC 6455 GUID)), 28 chars.
std::string acceptKey(std::string_view clientKey);

// Appends the complete "101 Switching Protocols" response. protocol: the selected
// subprotocol, empty for none; extraHeaderLines: complete "Name: value\r\n" lines (already
// validated). Precondition: clientKey was validated by HandshakeParser.
void appendSwitchingProtocols(std::string& out, std::string_view clientKey,
                              std::string_view protocol, std::string_view extraHeaderLines = {});

// The subprotocol to answer with: the first of `accepted` (the service's preference
// order) that appears in the client's comma-separated `offer`; empty if none.
std::string_view selectSubprotocol(std::string_view offer,
                                   const std::vector<std::string>& accepted);

// Appends a complete HTTP/1.1 error response with a text/plain body and Connection: close.
// 426 also carries "Upgrade: websocket" and "Sec-WebSocket-Version: 13", 405 "Allow: GET".
void appendHttpError(std::string& out, int status, std::string_view body);

// Standard reason phrase for an HTTP status ("Error" for codes not used by the server).
const char* reasonPhrase(int status);

}  // namespace lapps
