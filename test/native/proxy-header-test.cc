// The PROXY protocol header, v1 and v2 (protocol/proxy-header.h).
#include <arpa/inet.h>

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/proxy-header.h"
#include "test.h"

using namespace lapps;

namespace {

ProxyParse parse(const std::string& bytes, ProxyHeader& h, const char*& why) {
  return parseProxyHeader(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), h, why);
}

std::string v4text(const ProxyAddress& a) {
  char buf[INET6_ADDRSTRLEN];
  ::inet_ntop(a.v6 ? AF_INET6 : AF_INET, a.addr, buf, sizeof(buf));
  return buf;
}

std::string v2(uint8_t verCmd, uint8_t famProto, const std::vector<uint8_t>& rest) {
  std::string s("\r\n\r\n\0\r\nQUIT\n", 12);
  s.push_back(char(verCmd));
  s.push_back(char(famProto));
  s.push_back(char(rest.size() >> 8));
  s.push_back(char(rest.size() & 0xff));
  s.append(rest.begin(), rest.end());
  return s;
}

// Every proper prefix of a valid header asks for more; the whole of it parses.
void checkPrefixes(const std::string& header) {
  for (size_t n = 0; n < header.size(); ++n) {
    ProxyHeader h;
    const char* why;
    CHECK_EQ(int(parse(header.substr(0, n), h, why)), int(ProxyParse::NeedMore));
  }
}

}  // namespace

TEST("proxy v1: TCP4 and TCP6 name the client; the client's bytes follow") {
  const std::string line = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n";
  ProxyHeader h;
  const char* why;
  REQUIRE_EQ(int(parse(line + "GET / HTTP/1.1\r\n", h, why)), int(ProxyParse::Done));
  CHECK_EQ(h.version, uint8_t(1));
  CHECK(h.hasClient);
  CHECK_EQ(v4text(h.source), std::string("192.0.2.7"));
  CHECK_EQ(h.source.port, uint16_t(56324));
  CHECK_EQ(v4text(h.destination), std::string("198.51.100.1"));
  CHECK_EQ(h.destination.port, uint16_t(443));
  CHECK_EQ(h.length, line.size());
  checkPrefixes(line);

  REQUIRE_EQ(int(parse("PROXY TCP6 2001:db8::1 ::1 65535 0\r\n", h, why)), int(ProxyParse::Done));
  CHECK(h.source.v6);
  CHECK_EQ(v4text(h.source), std::string("2001:db8::1"));
  CHECK_EQ(h.source.port, uint16_t(65535));

  REQUIRE_EQ(int(parse("PROXY UNKNOWN anything at all\r\n", h, why)), int(ProxyParse::Done));
  CHECK(!h.hasClient);
  REQUIRE_EQ(int(parse("PROXY UNKNOWN\r\n", h, why)), int(ProxyParse::Done));
  CHECK(!h.hasClient);
}

TEST("proxy v1: malformed headers are refused with a reason") {
  const char* bad[] = {
      "GET / HTTP/1.1\r\n",                      // no header at all
      "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",      // unknown protocol
      "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",        // a field short
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",    // a field too many
      "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",     // double space
      "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",    // bad address
      "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",          // IPv6 under TCP4
      "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",          // IPv4 under TCP6
      "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",  // port out of range
      "PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n",    // leading zero
      "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",     // sign
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",        // LF only
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",       // CR without LF
      "PROXY TCP4 1.2.3.4\x01 5.6.7.8 1 2\r\n",  // control byte
      "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",      // lower case
  };
  for (const char* b : bad) {
    ProxyHeader h;
    const char* why = nullptr;
    CHECK_EQ(int(parse(b, h, why)), int(ProxyParse::Invalid));
    CHECK(why != nullptr);
  }
  // No CRLF within 107 bytes.
  ProxyHeader h;
  const char* why;
  CHECK_EQ(int(parse("PROXY UNKNOWN " + std::string(120, 'x'), h, why)), int(ProxyParse::Invalid));
  CHECK_EQ(int(parse("PROXY UNKNOWN " + std::string(80, 'x'), h, why)), int(ProxyParse::NeedMore));
  // 107 bytes with CRLF is the most; 108 is one too many.
  const std::string longest = "PROXY UNKNOWN " + std::string(91, 'x') + "\r\n";
  CHECK_EQ(longest.size(), size_t(107));
  CHECK_EQ(int(parse(longest, h, why)), int(ProxyParse::Done));
  CHECK_EQ(int(parse("PROXY UNKNOWN " + std::string(92, 'x') + "\r\n", h, why)),
           int(ProxyParse::Invalid));
}

TEST("proxy v2: IPv4 and IPv6 streams name the client; TLVs are skipped") {
  std::vector<uint8_t> rest = {192, 0, 2, 7, 198, 51, 100, 1, 0xDC, 0x04, 0x01, 0xBB};
  rest.insert(rest.end(), {0x04, 0x00, 0x02, 'h', 'i'});  // a TLV (type 4, 2 bytes)
  const std::string header = v2(0x21, 0x11, rest);
  ProxyHeader h;
  const char* why;
  REQUIRE_EQ(int(parse(header + "payload", h, why)), int(ProxyParse::Done));
  CHECK_EQ(h.version, uint8_t(2));
  CHECK(h.hasClient);
  CHECK_EQ(v4text(h.source), std::string("192.0.2.7"));
  CHECK_EQ(h.source.port, uint16_t(56324));
  CHECK_EQ(h.destination.port, uint16_t(443));
  CHECK_EQ(h.length, header.size());
  checkPrefixes(header);

  std::vector<uint8_t> rest6(36, 0);
  rest6[0] = 0x20;
  rest6[1] = 0x01;
  rest6[2] = 0x0d;
  rest6[3] = 0xb8;
  rest6[15] = 1;
  rest6[31] = 1;
  rest6[32] = 0x12;
  rest6[33] = 0x34;
  REQUIRE_EQ(int(parse(v2(0x21, 0x21, rest6), h, why)), int(ProxyParse::Done));
  CHECK(h.source.v6);
  CHECK_EQ(v4text(h.source), std::string("2001:db8::1"));
  CHECK_EQ(h.source.port, uint16_t(0x1234));

  // LOCAL (a health check from the balancer), UNSPEC and UNIX: no client address.
  REQUIRE_EQ(int(parse(v2(0x20, 0x00, {}), h, why)), int(ProxyParse::Done));
  CHECK(!h.hasClient);
  REQUIRE_EQ(int(parse(v2(0x21, 0x00, {}), h, why)), int(ProxyParse::Done));
  CHECK(!h.hasClient);
  REQUIRE_EQ(int(parse(v2(0x21, 0x31, std::vector<uint8_t>(216, 0)), h, why)),
             int(ProxyParse::Done));
  CHECK(!h.hasClient);
}

TEST("proxy v2: malformed headers are refused with a reason") {
  const std::vector<uint8_t> rest4 = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2};
  const std::string bad[] = {
      v2(0x11, 0x11, rest4),                          // version 1 in a v2 header
      v2(0x22, 0x11, rest4),                          // unknown command
      v2(0x21, 0x41, rest4),                          // unknown family
      v2(0x21, 0x13, rest4),                          // unknown transport
      v2(0x21, 0x12, rest4),                          // datagram
      v2(0x21, 0x11, {1, 2, 3, 4}),                   // too short for the addresses
      v2(0x21, 0x21, rest4),                          // too short for IPv6 addresses
      v2(0x21, 0x11, std::vector<uint8_t>(1100, 0)),  // over the bound
      std::string("\r\n\r\n\0\r\nQUIX\n", 12) + std::string(4, '\0'),  // bad signature
  };
  for (const std::string& b : bad) {
    ProxyHeader h;
    const char* why = nullptr;
    CHECK_EQ(int(parse(b, h, why)), int(ProxyParse::Invalid));
    CHECK(why != nullptr);
  }
}
