// Origin policy: same-origin default, exact and wildcard lists, "*", "null", missing Origin.
#include "security/origin.h"
#include "test.h"

using namespace lapps;
using namespace lapps::test;

namespace {

OriginPolicy list(std::vector<std::string> patterns, bool allowMissing = true) {
  OriginPolicy p;
  std::string error;
  CHECK(OriginPolicy::fromList(patterns, allowMissing, p, error));
  CHECK_EQ(error, "");
  return p;
}

}  // namespace

TEST("origin: parse serialized origins") {
  Origin o;
  REQUIRE(parseOrigin("HTTPS://Example.COM", o));
  CHECK_EQ(o.scheme, "https");
  CHECK_EQ(o.host, "example.com");
  CHECK_EQ(o.port, 443);
  REQUIRE(parseOrigin("http://127.0.0.1:8080", o));
  CHECK_EQ(o.port, 8080);
  REQUIRE(parseOrigin("http://[::1]:5083", o));
  CHECK_EQ(o.host, "[::1]");
  REQUIRE(parseOrigin("chrome-extension://abcdef", o));
  CHECK_EQ(o.port, 0);
  for (const char* bad :
       {"null", "", "example.com", "http://", "http://a b", "http://a/path", "http://u@a",
        "http://a:0", "http://a:65536", "http://a:123456", "http://a:", "http://[::1",
        "http://[zz]", "://a", "1http://a", "http://a?q", "http://a#f"}) {
    CHECK(!parseOrigin(bad, o));
  }
}

TEST("origin: same-origin default compares with the Host header") {
  OriginPolicy p = OriginPolicy::sameOrigin(true);
  CHECK(p.allows("http://localhost:5083", "localhost:5083", false));
  CHECK(p.allows("http://LOCALHOST:5083", "localhost:5083", false));
  CHECK(p.allows("https://example.com", "example.com", true));  // 443 both sides
  CHECK(p.allows("http://example.com", "example.com", false));  // 80 both sides
  CHECK(p.allows("https://example.com", "example.com:443", true));
  CHECK(!p.allows("https://example.com", "example.com", false));  // 443 vs 80
  CHECK(!p.allows("http://evil.com:5083", "localhost:5083", false));
  CHECK(!p.allows("http://localhost:8080", "localhost:5083", false));
  CHECK(!p.allows("null", "localhost:5083", false));
  CHECK(!p.allows("garbage", "localhost:5083", false));
  CHECK(p.allows("", "localhost:5083", false));  // no Origin: not a browser
  CHECK(!OriginPolicy::sameOrigin(false).allows("", "localhost:5083", false));
  CHECK(p.allows("http://[::1]:5083", "[::1]:5083", false));
}

TEST("origin: exact, wildcard, any and null patterns") {
  OriginPolicy p =
      list({"https://app.example.com", "http://localhost:8080", "https://*.example.org"});
  CHECK(p.allows("https://app.example.com", "ignored", false));
  CHECK(p.allows("https://app.example.com:443", "ignored", false));
  CHECK(!p.allows("http://app.example.com", "ignored", false));  // scheme differs
  CHECK(!p.allows("https://app.example.com:8443", "ignored", false));
  CHECK(p.allows("http://localhost:8080", "ignored", false));
  CHECK(!p.allows("http://localhost:8081", "ignored", false));
  CHECK(p.allows("https://a.example.org", "x", false));
  CHECK(p.allows("https://a.b.example.org", "x", false));
  CHECK(!p.allows("https://example.org", "x", false));  // the domain itself is not a subdomain
  CHECK(!p.allows("https://evilexample.org", "x", false));
  CHECK(!p.allows("https://a.example.org.evil.com", "x", false));
  CHECK(!p.allows("null", "x", false));
  CHECK(p.allows("", "x", false));
  CHECK(!list({"https://a.com"}, false).allows("", "x", false));
  CHECK(list({"*"}).allows("https://anything.test", "x", false));
  CHECK(list({"*"}).allows("null", "x", false));
  CHECK(list({"null"}).allows("null", "x", false));
  CHECK(!list({"null"}).allows("https://a.com", "x", false));
}

TEST("origin: same origin plus a list (the dev static server's page)") {
  OriginPolicy p;
  std::string error;
  REQUIRE(OriginPolicy::fromList({"http://127.0.0.1:8080"}, true, p, error, true));
  CHECK(p.allows("http://127.0.0.1:8080", "127.0.0.1:5083", false));
  CHECK(p.allows("http://127.0.0.1:5083", "127.0.0.1:5083", false));
  CHECK(!p.allows("http://127.0.0.1:9999", "127.0.0.1:5083", false));
}

TEST("origin: bad patterns are named") {
  for (const char* bad : {"example.com", "https://*", "https://*.", "https://*..com",
                          "https://a.*.com", "https://a.com/path", "ftp//a", ""}) {
    OriginPolicy p;
    std::string error;
    CHECK(!OriginPolicy::fromList({bad}, true, p, error));
    CHECK(error.find(std::string("\"") + bad + "\"") != std::string::npos);
  }
}
