#include "protocol/proxy-header.h"

#include <arpa/inet.h>

#include <cstring>
#include <string_view>

namespace lapps {

namespace {

constexpr uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr char kV1Prefix[] = "PROXY ";
constexpr size_t kV1PrefixLen = sizeof(kV1Prefix) - 1;
constexpr size_t kV1MaxLine = 107;  // the spec's bound, CRLF included

// Does data[0..len) agree with the first len bytes of `prefix`?
bool agrees(const uint8_t* data, size_t len, const uint8_t* prefix, size_t prefixLen) {
  return std::memcmp(data, prefix, len < prefixLen ? len : prefixLen) == 0;
}

// A decimal port: 0 to 65535, no sign, no leading zero (but "0").
bool parsePort(const char* s, size_t n, uint16_t& out) {
  if (n == 0 || n > 5 || (n > 1 && s[0] == '0')) return false;
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + uint32_t(s[i] - '0');
  }
  if (v > 65535) return false;
  out = uint16_t(v);
  return true;
}

bool parseAddress(const char* s, size_t n, bool v6, ProxyAddress& out) {
  char text[INET6_ADDRSTRLEN];
  if (n == 0 || n >= sizeof(text)) return false;
  std::memcpy(text, s, n);
  text[n] = '\0';
  out.v6 = v6;
  return ::inet_pton(v6 ? AF_INET6 : AF_INET, text, out.addr) == 1;
}

ProxyParse parseV1(const uint8_t* data, size_t len, ProxyHeader& out, const char*& why) {
  const char* text = reinterpret_cast<const char*>(data);
  size_t end = 0;  // index of the CR of CRLF
  for (; end < len && end + 2 <= kV1MaxLine; ++end) {
    if (text[end] == '\r') break;
    if (text[end] < 0x20 || text[end] > 0x7e) {
      why = "PROXY v1 header has a byte that is not printable ASCII before CRLF";
      return ProxyParse::Invalid;
    }
  }
  if (end == len) return ProxyParse::NeedMore;  // no CR yet, within the bound
  if (text[end] != '\r' || end + 2 > kV1MaxLine) {
    why = "PROXY v1 header longer than 107 bytes";
    return ProxyParse::Invalid;
  }
  if (end + 1 == len) return ProxyParse::NeedMore;
  if (text[end + 1] != '\n') {
    why = "PROXY v1 header does not end with CRLF";
    return ProxyParse::Invalid;
  }
  out = ProxyHeader{};
  out.version = 1;
  out.length = end + 2;
  // The protocol, then (for TCP4 / TCP6) four fields, separated by single spaces.
  const char* line = text + kV1PrefixLen;
  const std::string_view all(line, end - kV1PrefixLen);
  const std::string_view proto = all.substr(0, all.find(' '));
  if (proto == "UNKNOWN") return ProxyParse::Done;  // the rest of the line is ignored
  if (proto != "TCP4" && proto != "TCP6") {
    why = "PROXY v1 header names no known protocol (TCP4, TCP6, UNKNOWN)";
    return ProxyParse::Invalid;
  }
  const char* fields[5];
  size_t sizes[5];
  size_t count = 0;
  size_t start = 0;
  for (size_t i = 0; i <= all.size(); ++i) {
    if (i == all.size() || all[i] == ' ') {
      if (count == 5) {
        why = "PROXY v1 header has too many fields";
        return ProxyParse::Invalid;
      }
      fields[count] = line + start;
      sizes[count] = i - start;
      ++count;
      start = i + 1;
    }
  }
  const bool v6 = proto == "TCP6";
  if (count != 5 || !parseAddress(fields[1], sizes[1], v6, out.source) ||
      !parseAddress(fields[2], sizes[2], v6, out.destination) ||
      !parsePort(fields[3], sizes[3], out.source.port) ||
      !parsePort(fields[4], sizes[4], out.destination.port)) {
    why = "PROXY v1 header has malformed addresses or ports";
    return ProxyParse::Invalid;
  }
  out.hasClient = true;
  return ProxyParse::Done;
}

ProxyParse parseV2(const uint8_t* data, size_t len, ProxyHeader& out, const char*& why) {
  if (len < 16) return ProxyParse::NeedMore;
  const uint8_t version = data[12] >> 4, command = data[12] & 0x0F;
  const uint8_t family = data[13] >> 4, transport = data[13] & 0x0F;
  const size_t rest = size_t(data[14]) << 8 | data[15];
  if (version != 2) {
    why = "PROXY v2 header has an unknown version";
    return ProxyParse::Invalid;
  }
  if (command > 1) {
    why = "PROXY v2 header has an unknown command";
    return ProxyParse::Invalid;
  }
  if (family > 3 || transport > 2) {
    why = "PROXY v2 header has an unknown address family or transport";
    return ProxyParse::Invalid;
  }
  if (16 + rest > kMaxProxyHeader) {
    why = "PROXY v2 header longer than 1024 bytes";
    return ProxyParse::Invalid;
  }
  if (len < 16 + rest) return ProxyParse::NeedMore;
  out = ProxyHeader{};
  out.version = 2;
  out.length = 16 + rest;
  // LOCAL: the balancer's own connection (a health check); UNSPEC or UNIX: no IP client.
  if (command == 0 || family == 0 || family == 3) return ProxyParse::Done;
  if (transport != 1) {
    why = "PROXY v2 header is not for a stream connection";
    return ProxyParse::Invalid;
  }
  const bool v6 = family == 2;
  const size_t addrLen = v6 ? 16 : 4;
  if (rest < 2 * addrLen + 4) {
    why = "PROXY v2 header is too short for its addresses";
    return ProxyParse::Invalid;
  }
  const uint8_t* p = data + 16;
  out.source.v6 = out.destination.v6 = v6;
  std::memcpy(out.source.addr, p, addrLen);
  std::memcpy(out.destination.addr, p + addrLen, addrLen);
  out.source.port = uint16_t(p[2 * addrLen] << 8 | p[2 * addrLen + 1]);
  out.destination.port = uint16_t(p[2 * addrLen + 2] << 8 | p[2 * addrLen + 3]);
  out.hasClient = true;  // TLVs after the addresses are skipped
  return ProxyParse::Done;
}

}  // namespace

ProxyParse parseProxyHeader(const uint8_t* data, size_t len, ProxyHeader& out, const char*& why) {
  why = nullptr;
  if (len == 0) return ProxyParse::NeedMore;
  if (data[0] == kV2Signature[0]) {
    if (!agrees(data, len, kV2Signature, sizeof(kV2Signature))) {
      why = "no PROXY header (bad v2 signature)";
      return ProxyParse::Invalid;
    }
    return parseV2(data, len, out, why);
  }
  const auto* prefix = reinterpret_cast<const uint8_t*>(kV1Prefix);
  if (!agrees(data, len, prefix, kV1PrefixLen)) {
    why = "no PROXY header";
    return ProxyParse::Invalid;
  }
  if (len <= kV1PrefixLen) return ProxyParse::NeedMore;
  return parseV1(data, len, out, why);
}

}  // namespace lapps
