#include "protocol/handshake-response.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstring>

namespace lapps {

namespace {

constexpr char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr size_t kAcceptLen = 28;  // base64 of a 20-byte digest

// Writes the 28-char accept value plus a NUL to out.
void computeAccept(std::string_view clientKey, char out[kAcceptLen + 1]) {
  constexpr size_t kGuidLen = sizeof(kGuid) - 1;
  unsigned char digest[SHA_DIGEST_LENGTH];
  // Valid keys are 24 bytes: hash from the stack; anything longer goes through a string.
  char stack[64 + kGuidLen];
  if (clientKey.size() <= 64) {
    if (!clientKey.empty()) std::memcpy(stack, clientKey.data(), clientKey.size());
    std::memcpy(stack + clientKey.size(), kGuid, kGuidLen);
    SHA1(reinterpret_cast<const unsigned char*>(stack), clientKey.size() + kGuidLen, digest);
  } else {
    std::string input(clientKey);
    input.append(kGuid, kGuidLen);
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  }
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out), digest, SHA_DIGEST_LENGTH);
}

}  // namespace

std::string acceptKey(std::string_view clientKey) {
  char accept[kAcceptLen + 1];
  computeAccept(clientKey, accept);
  return std::string(accept, kAcceptLen);
}

void appendSwitchingProtocols(std::string& out, std::string_view clientKey,
                              std::string_view protocol, std::string_view extraHeaderLines) {
  char accept[kAcceptLen + 1];
  computeAccept(clientKey, accept);
  out.append(
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ");
  out.append(accept, kAcceptLen);
  out.append("\r\n");
  if (!protocol.empty()) out.append("Sec-WebSocket-Protocol: ").append(protocol).append("\r\n");
  out.append(extraHeaderLines);
  out.append("\r\n");
}

std::string_view selectSubprotocol(std::string_view offer,
                                   const std::vector<std::string>& accepted) {
  for (const std::string& want : accepted) {
    size_t pos = 0;
    while (pos <= offer.size()) {
      size_t comma = offer.find(',', pos);
      if (comma == std::string_view::npos) comma = offer.size();
      std::string_view token = offer.substr(pos, comma - pos);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) {
        token.remove_prefix(1);
      }
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) {
        token.remove_suffix(1);
      }
      // Subprotocol names are case-sensitive tokens (RFC 6455 §11.3.4).
      if (token == want) return want;
      pos = comma + 1;
    }
  }
  return {};
}

const char* reasonPhrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

void appendHttpError(std::string& out, int status, std::string_view body) {
  out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ");
  out.append(reasonPhrase(status)).append("\r\n");
  out.append("Content-Type: text/plain; charset=utf-8\r\nContent-Length: ");
  out.append(std::to_string(body.size())).append("\r\nConnection: close\r\n");
  if (status == 426) out.append("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
  if (status == 405) out.append("Allow: GET\r\n");
  if (status == 429 || status == 503) out.append("Retry-After: 1\r\n");
  out.append("\r\n").append(body);
}

}  // namespace lapps
