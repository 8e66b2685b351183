#include "handshake.h"

#include <openssl/evp.h>

#include <cstring>

namespace loadgen {
namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool equalsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = char(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = char(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True when the comma-separated list holds `token` (case-insensitive).
bool hasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (equalsNoCase(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

HandshakeRequest::HandshakeRequest(std::string_view host, unsigned port, std::string_view path) {
  head_ = "GET ";
  head_ += path;
  head_ += " HTTP/1.1\r\nHost: ";
  head_ += host;
  head_ += ':';
  head_ += std::to_string(port);
  head_ +=
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: ";
}

void HandshakeRequest::makeKey(Xoshiro256& rng, char key[kKeyLen]) {
  uint8_t raw[16];
  rng.fill(raw, sizeof raw);
  unsigned char b64[kKeyLen + 1];
  EVP_EncodeBlock(b64, raw, sizeof raw);
  std::memcpy(key, b64, kKeyLen);
}

void HandshakeRequest::iov(const char key[kKeyLen], iovec out[3]) const {
  out[0] = {const_cast<char*>(head_.data()), head_.size()};
  out[1] = {const_cast<char*>(key), kKeyLen};
  out[2] = {const_cast<char*>(kTail.data()), kTail.size()};
}

ResponseStatus checkResponse(const char* data, size_t len, const char key[kKeyLen],
                             size_t* headerLen) {
  std::string_view all(data, len);
  size_t end = all.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    return len > kMaxResponse ? ResponseStatus::kFailed : ResponseStatus::kIncomplete;
  }
  *headerLen = end + 4;
  std::string_view head = all.substr(0, end + 2);  // every line ends with CRLF

  size_t eol = head.find("\r\n");
  std::string_view status = head.substr(0, eol);
  if (status.substr(0, 13) != "HTTP/1.1 101 " && status != "HTTP/1.1 101") {
    return ResponseStatus::kFailed;
  }

  char expected[29];
  {
    char input[kKeyLen + kGuid.size()];
    std::memcpy(input, key, kKeyLen);
    std::memcpy(input + kKeyLen, kGuid.data(), kGuid.size());
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digestLen = 0;
    if (!EVP_Digest(input, sizeof input, digest, &digestLen, EVP_sha1(), nullptr)) {
      return ResponseStatus::kFailed;
    }
    EVP_EncodeBlock(reinterpret_cast<unsigned char*>(expected), digest, digestLen);
  }

  bool upgrade = false, connection = false, accept = false;
  for (size_t pos = eol + 2; pos < head.size();) {
    size_t next = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, next - pos);
    pos = next + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (equalsNoCase(name, "upgrade")) {
      upgrade = equalsNoCase(value, "websocket");
    } else if (equalsNoCase(name, "connection")) {
      connection = hasToken(value, "upgrade");
    } else if (equalsNoCase(name, "sec-websocket-accept")) {
      accept = value == std::string_view(expected, 28);
    }
  }
  return upgrade && connection && accept ? ResponseStatus::kOk : ResponseStatus::kFailed;
}

}  // namespace loadgen
