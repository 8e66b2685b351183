// The client behind trusted proxies (security/forwarded.h).
#include <arpa/inet.h>

#include <string>

#include "security/forwarded.h"
#include "test.h"

using namespace lapps;

namespace {

std::shared_ptr<const Acl> trustedProxies() {
  std::string error;
  // The balancers: 10.0.0.0/8 and fd00::/8.
  return Acl::compile({{"10.0.0.0/8", AclAction::Allow}, {"fd00::/8", AclAction::Allow}},
                      AclAction::Deny, error);
}

ForwardedAddress peer(const char* ip) {
  ForwardedAddress a{};
  if (::inet_pton(AF_INET, ip, &a.v4.sin_addr) == 1) {
    a.v4.sin_family = AF_INET;
    a.v4.sin_port = htons(40000);
  } else {
    ::inet_pton(AF_INET6, ip, &a.v6.sin6_addr);
    a.v6.sin6_family = AF_INET6;
  }
  return a;
}

// The client forwardedClient finds, as text; "" when the peer stands.
std::string client(const char* from, std::string_view xff, std::string_view fwd = {}) {
  auto acl = trustedProxies();
  ForwardedAddress p = peer(from), c{};
  if (!forwardedClient(*acl, &p.sa, xff, fwd, c)) return "";
  char buf[INET6_ADDRSTRLEN];
  if (c.sa.sa_family == AF_INET) {
    ::inet_ntop(AF_INET, &c.v4.sin_addr, buf, sizeof(buf));
    if (c.v4.sin_port != 0) return "port kept";
  } else {
    ::inet_ntop(AF_INET6, &c.v6.sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

}  // namespace

TEST("forwarded: the first untrusted hop from the right is the client") {
  CHECK_EQ(client("10.0.0.5", "203.0.113.9"), std::string("203.0.113.9"));
  CHECK_EQ(client("10.0.0.5", "203.0.113.9, 10.1.1.1"), std::string("203.0.113.9"));
  // A spoofed left part: the client wrote "1.1.1.1" itself; the first proxy appended what
  // it saw.
  CHECK_EQ(client("10.0.0.5", "1.1.1.1, 203.0.113.9, 10.1.1.1"), std::string("203.0.113.9"));
  // Every hop trusted: the left-most one.
  CHECK_EQ(client("10.0.0.5", "10.9.9.9, 10.1.1.1"), std::string("10.9.9.9"));
  // Ports and brackets as some proxies write them; IPv6.
  CHECK_EQ(client("10.0.0.5", "203.0.113.9:5678"), std::string("203.0.113.9"));
  CHECK_EQ(client("10.0.0.5", "[2001:db8::7]:443"), std::string("2001:db8::7"));
  CHECK_EQ(client("fd00::1", "2001:db8::7, fd00::2"), std::string("2001:db8::7"));
}

TEST("forwarded: an untrusted peer's headers are ignored, never trusted") {
  CHECK_EQ(client("203.0.113.50", "1.2.3.4"), std::string());
  CHECK_EQ(client("203.0.113.50", "", "for=1.2.3.4"), std::string());
  CHECK_EQ(client("2001:db8::50", "1.2.3.4"), std::string());
}

TEST("forwarded: a malformed entry ends the walk at the last trusted hop") {
  CHECK_EQ(client("10.0.0.5", "garbage"), std::string());
  CHECK_EQ(client("10.0.0.5", ""), std::string());
  CHECK_EQ(client("10.0.0.5", "203.0.113.9, garbage, 10.1.1.1"), std::string("10.1.1.1"));
  CHECK_EQ(client("10.0.0.5", "1.2.3.4:99999"), std::string());
  CHECK_EQ(client("10.0.0.5", "[2001:db8::7"), std::string());
  CHECK_EQ(client("10.0.0.5", "[1.2.3.4]"), std::string());
  CHECK_EQ(client("10.0.0.5", std::string(100000, ',')), std::string());
}

TEST("forwarded: RFC 7239 Forwarded when there is no X-Forwarded-For") {
  CHECK_EQ(client("10.0.0.5", "", "for=192.0.2.60;proto=http;by=203.0.113.43"),
           std::string("192.0.2.60"));
  CHECK_EQ(client("10.0.0.5", "", "for=\"[2001:db8:cafe::17]:4711\""),
           std::string("2001:db8:cafe::17"));
  CHECK_EQ(client("10.0.0.5", "", "For=192.0.2.43, for=10.1.1.1"), std::string("192.0.2.43"));
  CHECK_EQ(client("10.0.0.5", "", "for=unknown"), std::string());
  CHECK_EQ(client("10.0.0.5", "", "for=_hidden, for=10.1.1.1"), std::string("10.1.1.1"));
  // X-Forwarded-For wins when both are sent.
  CHECK_EQ(client("10.0.0.5", "198.51.100.1", "for=192.0.2.60"), std::string("198.51.100.1"));
}
