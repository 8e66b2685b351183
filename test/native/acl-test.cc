// Network ACLs: parseCidr accept/reject tables, the LAppS policy + exclude semantics,
// longest-prefix wins, conflicts, IPv4-mapped peers, range boundaries, and compile + lookup
// against a naive reference (a linear scan for the longest matching prefix) on random,
// nested rule sets.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "security/acl.h"
#include "test.h"

using namespace lapps;
using namespace lapps::test;

namespace {

constexpr AclAction kAllow = AclAction::Allow;
constexpr AclAction kDeny = AclAction::Deny;

uint32_t v4(const char* text) {
  in_addr a;
  if (inet_pton(AF_INET, text, &a) != 1) FAIL(std::string("bad test address ") + text);
  return ntohl(a.s_addr);
}

struct V6 {
  uint8_t b[16] = {};
};

V6 v6(const char* text) {
  V6 a;
  if (inet_pton(AF_INET6, text, a.b) != 1) FAIL(std::string("bad test address ") + text);
  return a;
}

sockaddr_in sin4(const char* text) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(5083);
  s.sin_addr.s_addr = htonl(v4(text));
  return s;
}

sockaddr_in6 sin6(const char* text) {
  sockaddr_in6 s{};
  s.sin6_family = AF_INET6;
  s.sin6_port = htons(5083);
  std::memcpy(s.sin6_addr.s6_addr, v6(text).b, 16);
  return s;
}

const sockaddr* sa(const sockaddr_in& s) {
  return reinterpret_cast<const sockaddr*>(&s);
}
const sockaddr* sa(const sockaddr_in6& s) {
  return reinterpret_cast<const sockaddr*>(&s);
}

// Whether `text` (an IPv4 or IPv6 address) gets in, asked the way a worker asks.
bool admits(const Acl& acl, const char* text) {
  if (std::strchr(text, ':') == nullptr) {
    const sockaddr_in s = sin4(text);
    const bool viaAddr = acl.allows(sa(s));
    if (viaAddr != acl.allowsV4(v4(text))) FAIL(std::string("allows != allowsV4 for ") + text);
    return viaAddr;
  }
  const sockaddr_in6 s = sin6(text);
  const bool viaAddr = acl.allows(sa(s));
  if (viaAddr != acl.allowsV6(v6(text).b)) FAIL(std::string("allows != allowsV6 for ") + text);
  return viaAddr;
}

std::shared_ptr<const Acl> compileOk(const std::vector<AclRule>& rules, AclAction fallback) {
  std::string error;
  auto acl = Acl::compile(rules, fallback, error);
  if (!acl) FAIL("compile failed: " + error);
  return acl;
}

// LAppS's {"policy": ..., "exclude": [...]}: the policy is the fallback and every excluded
// block gets the opposite.
std::shared_ptr<const Acl> lappsAcl(AclAction policy, const std::vector<std::string>& exclude) {
  std::vector<AclRule> rules;
  for (const std::string& e : exclude) rules.push_back({e, policy == kAllow ? kDeny : kAllow});
  return compileOk(rules, policy);
}

// --- the naive reference ----------------------------------------------------------------

struct RefRule {
  bool v6;
  uint8_t addr[16];  // host bits may be set: the reference ignores them itself
  int prefix;
  AclAction action;
};

bool refCovers(const RefRule& r, bool v6, const uint8_t* a) {
  if (r.v6 != v6) return false;
  for (int bit = 0; bit < r.prefix; ++bit) {
    if (((r.addr[bit / 8] ^ a[bit / 8]) >> (7 - bit % 8)) & 1) return false;
  }
  return true;
}

bool refSameBlock(const RefRule& a, const RefRule& b) {
  return a.v6 == b.v6 && a.prefix == b.prefix && refCovers(a, b.v6, b.addr);
}

// The longest covering prefix decides; IPv4-mapped IPv6 addresses are looked up as IPv4.
bool refAllows(const std::vector<RefRule>& rules, AclAction fallback, bool v6, const uint8_t* a) {
  uint8_t mapped[16];
  if (v6 && std::all_of(a, a + 10, [](uint8_t x) { return x == 0; }) && a[10] == 0xff &&
      a[11] == 0xff) {
    std::memcpy(mapped, a + 12, 4);
    a = mapped;
    v6 = false;
  }
  int best = -1;
  AclAction action = fallback;
  for (const RefRule& r : rules) {
    if (r.prefix > best && refCovers(r, v6, a)) {
      best = r.prefix;
      action = r.action;
    }
  }
  return action == kAllow;
}

// Adds `delta` (+1 or -1) to a big-endian number of `n` bytes, wrapping.
void step(uint8_t* a, int n, int delta) {
  for (int i = n - 1; i >= 0; --i) {
    a[i] = static_cast<uint8_t>(a[i] + delta);
    if (a[i] != (delta > 0 ? 0x00 : 0xff)) break;
  }
}

// First and last address of a rule's block.
void refBounds(const RefRule& r, uint8_t first[16], uint8_t last[16]) {
  for (int i = 0; i < 16; ++i) {
    const int keep = std::clamp(r.prefix - 8 * i, 0, 8);
    const auto mask = static_cast<uint8_t>(0xFF00u >> keep);
    first[i] = r.addr[i] & mask;
    last[i] = static_cast<uint8_t>(r.addr[i] | ~mask);
  }
}

std::string ruleText(const RefRule& r, int style) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(r.v6 ? AF_INET6 : AF_INET, r.addr, buf, sizeof buf);
  std::string s = buf;
  if (!r.v6 && style == 1) {
    return "::ffff:" + s + "/" + std::to_string(96 + r.prefix);  // the dual-stack spelling
  }
  if (style == 2 && r.prefix == (r.v6 ? 128 : 32)) return s;  // bare address
  return s + "/" + std::to_string(r.prefix);
}

}  // namespace

// --- parsing ----------------------------------------------------------------------------

TEST("acl: parseCidr accepts IPv4, IPv6 and mapped blocks, clears host bits") {
  struct Row {
    const char* text;
    const char* normal;  // formatCidr of the result
    bool v6;
  };
  const Row rows[] = {
      {"10.0.0.1", "10.0.0.1/32", false},
      {"10.0.0.0/8", "10.0.0.0/8", false},
      {"10.1.2.3/8", "10.0.0.0/8", false},
      {"192.168.1.77/31", "192.168.1.76/31", false},
      {"192.168.1.77/30", "192.168.1.76/30", false},
      {"1.2.3.4/0", "0.0.0.0/0", false},
      {"0.0.0.0/0", "0.0.0.0/0", false},
      {"255.255.255.255", "255.255.255.255/32", false},
      {"255.255.255.255/1", "128.0.0.0/1", false},
      {"::1", "::1/128", true},
      {"::", "::/128", true},
      {"::/0", "::/0", true},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/1", "8000::/1", true},
      {"2001:db8::/32", "2001:db8::/32", true},
      {"2001:DB8:0:0:0:0:0:1/64", "2001:db8::/64", true},
      {"2001:db8::ff/121", "2001:db8::80/121", true},
      {"fe80::1/10", "fe80::/10", true},
      {"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8/128", true},
      {"::ffff:1.2.3.4", "1.2.3.4/32", false},
      {"::FFFF:10.1.2.3/104", "10.0.0.0/8", false},
      {"::ffff:0102:0304", "1.2.3.4/32", false},
      {"::ffff:0:0/96", "0.0.0.0/0", false},
      {"::ffff:1.2.3.4/127", "1.2.3.4/31", false},
      {"0:0:0:0:0:ffff:1.2.3.4/120", "1.2.3.0/24", false},
      {"0000:0000:0000:0000:0000:ffff:255.255.255.255", "255.255.255.255/32", false},  // longest
      // Shorter than /96 it no longer means "IPv4 only": it stays an IPv6 block.
      {"::ffff:0:0/95", "::fffe:0:0/95", true},
      {"::ffff:1.2.3.4/80", "::/80", true},
  };
  for (const Row& r : rows) {
    Cidr c;
    std::string error;
    if (!CHECK(parseCidr(r.text, c, error))) {
      FAIL(std::string(r.text) + ": " + error);
      continue;
    }
    if (!CHECK_EQ(formatCidr(c), std::string(r.normal))) FAIL(r.text);
    CHECK_EQ(c.v6, r.v6);
    Cidr again;
    CHECK(parseCidr(formatCidr(c), again, error));
    CHECK(again == c);
  }
  // The compatible form ::a.b.c.d is not mapped: it stays IPv6.
  Cidr c;
  std::string error;
  REQUIRE(parseCidr("::1.2.3.4", c, error));
  CHECK(c.v6);
  CHECK_EQ(c.prefix, 128);
  CHECK_EQ(c.addr[15], 4);
  // IPv4 keeps the rest of addr zero.
  REQUIRE(parseCidr("255.255.255.255", c, error));
  CHECK(std::all_of(c.addr + 4, c.addr + 16, [](uint8_t x) { return x == 0; }));
}

TEST("acl: parseCidr rejects junk, zone ids, spaces, bad prefixes, empty parts") {
  struct Row {
    std::string text;
    const char* error;  // a part of the message
  };
  const Row rows[] = {
      {"", "empty address"},
      {" 10.0.0.1", "unexpected character ' '"},
      {"10.0.0.1 ", "unexpected character ' '"},
      {"10.0.0.1\t", "unexpected character '\\x09'"},
      {"10.0.0.1\n", "unexpected character '\\x0a'"},
      {"10.0.0.1 /8", "unexpected character ' '"},
      {"10.0.0.1/ 8", "unexpected character ' ' in prefix length"},
      {"10.0.0.1/8 ", "unexpected character ' ' in prefix length"},
      {std::string("10.0.0.1\0", 9), "unexpected character '\\x00'"},
      {std::string("10.0.0.1/8\0", 11), "unexpected character '\\x00' in prefix length"},
      {"10.0.0.0/33", "prefix length over 32"},
      {"10.0.0.0/99999999999999999999", "prefix length over 32"},
      {"::/129", "prefix length over 128"},
      {"::ffff:1.2.3.4/129", "prefix length over 128"},
      {"10.0.0.0/", "missing prefix length"},
      {"/8", "missing address"},
      {"/", "missing address"},
      {"10.0.0.0/+8", "unexpected character '+' in prefix length"},
      {"+10.0.0.0", "unexpected character '+'"},
      {"-10.0.0.0", "unexpected character '-'"},
      {"10.0.0.0/-1", "unexpected character '-' in prefix length"},
      {"10.0.0.0/08", "leading zero"},
      {"10.0.0.0/00", "leading zero"},
      {"::/000", "leading zero"},
      {"10.0.0.0/8/8", "unexpected character '/' in prefix length"},
      {"10.0.0.0/8.0", "unexpected character '.' in prefix length"},
      {"10.0.0", "not an IPv4 address"},
      {"10..0.1", "not an IPv4 address"},
      {"10.0.0.256", "not an IPv4 address"},
      {"010.0.0.1", "not an IPv4 address"},
      {"10.0.0.01", "not an IPv4 address"},
      {"10.0.0.1.", "not an IPv4 address"},
      {".10.0.0.1", "not an IPv4 address"},
      {"1.2.3.4.5", "not an IPv4 address"},
      {"1234", "not an IPv4 address"},
      {"a.b.c.d", "not an IPv4 address"},
      {"0x0a.0.0.1", "unexpected character 'x'"},
      {"localhost", "unexpected character 'l'"},
      {"fe80::1%eth0", "zone ids"},
      {"fe80::1%1/64", "zone ids"},
      {":::1", "not an IPv6 address"},
      {"1:2:3:4:5:6:7:8:9", "not an IPv6 address"},
      {"12345::", "not an IPv6 address"},
      {"1::2::3", "not an IPv6 address"},
      {"::ffff:1.2.3", "not an IPv6 address"},
      {"::ffff:01.2.3.4", "not an IPv6 address"},
      {"1.2.3.4:80", "not an IPv6 address"},
      {"::g", "unexpected character 'g'"},
      {"[::1]", "unexpected character '['"},
      {"[::1]/128", "unexpected character '['"},
      {std::string(46, '1'), "address too long"},
  };
  for (const Row& r : rows) {
    Cidr c;
    std::string error;
    if (!CHECK(!parseCidr(r.text, c, error))) {
      FAIL("accepted: " + show(r.text));
      continue;
    }
    if (!CHECK(error.find(r.error) != std::string::npos)) FAIL(show(r.text) + " -> " + error);
  }
}

// --- semantics --------------------------------------------------------------------------

TEST("acl: LAppS policy allow + exclude denies the excluded blocks only") {
  auto acl = lappsAcl(kAllow, {"10.0.0.0/8", "192.168.1.1", "2001:db8::/32"});
  REQUIRE(acl);
  CHECK(!admits(*acl, "10.0.0.0"));
  CHECK(!admits(*acl, "10.200.3.4"));
  CHECK(!admits(*acl, "192.168.1.1"));
  CHECK(admits(*acl, "192.168.1.2"));
  CHECK(admits(*acl, "8.8.8.8"));
  CHECK(!admits(*acl, "2001:db8::1"));
  CHECK(admits(*acl, "2001:db9::1"));
  CHECK(admits(*acl, "::1"));
}

TEST("acl: LAppS policy deny + exclude admits the excluded blocks only") {
  auto acl = lappsAcl(kDeny, {"127.0.0.1", "::1", "10.0.0.0/8"});
  REQUIRE(acl);
  CHECK(admits(*acl, "127.0.0.1"));
  CHECK(admits(*acl, "::1"));
  CHECK(admits(*acl, "10.1.2.3"));
  CHECK(!admits(*acl, "127.0.0.2"));
  CHECK(!admits(*acl, "11.0.0.0"));
  CHECK(!admits(*acl, "::2"));
  CHECK(!admits(*acl, "2001:db8::1"));
}

TEST("acl: no rules means the fallback everywhere, one range per family") {
  for (AclAction fallback : {kAllow, kDeny}) {
    auto acl = lappsAcl(fallback, {});
    REQUIRE(acl);
    CHECK_EQ(acl->rangeCount(), size_t{2});
    for (const char* a : {"0.0.0.0", "1.2.3.4", "255.255.255.255", "::", "::1", "ffff::1"})
      CHECK_EQ(admits(*acl, a), fallback == kAllow);
  }
}

TEST("acl: the longest prefix wins whatever the order of the rules") {
  std::vector<AclRule> rules = {
      {"10.0.0.0/8", kDeny}, {"10.1.0.0/16", kAllow}, {"10.1.2.0/24", kDeny}, {"10.1.2.3", kAllow}};
  std::sort(rules.begin(), rules.end(),
            [](const AclRule& a, const AclRule& b) { return a.cidr < b.cidr; });
  int orders = 0;
  do {
    auto acl = compileOk(rules, kAllow);
    REQUIRE(acl);
    CHECK(admits(*acl, "9.255.255.255"));
    CHECK(!admits(*acl, "10.0.0.0"));
    CHECK(!admits(*acl, "10.0.255.255"));
    CHECK(admits(*acl, "10.1.0.0"));
    CHECK(admits(*acl, "10.1.1.255"));
    CHECK(!admits(*acl, "10.1.2.0"));
    CHECK(!admits(*acl, "10.1.2.2"));
    CHECK(admits(*acl, "10.1.2.3"));
    CHECK(!admits(*acl, "10.1.2.4"));
    CHECK(!admits(*acl, "10.1.2.255"));
    CHECK(admits(*acl, "10.1.3.0"));
    CHECK(!admits(*acl, "10.2.0.0"));
    CHECK(admits(*acl, "11.0.0.0"));
    // allow | deny 10/8 | allow 10.1/16 | deny 10.1.2/24 | allow .3 | deny | allow | deny | allow,
    // plus one IPv6 range.
    CHECK_EQ(acl->rangeCount(), size_t{10});
    ++orders;
  } while (
      std::next_permutation(rules.begin(), rules.end(),
                            [](const AclRule& a, const AclRule& b) { return a.cidr < b.cidr; }));
  CHECK_EQ(orders, 24);

  // The same for IPv6.
  const std::vector<AclRule> six = {{"2001:db8:1::/48", kAllow}, {"2001:db8::/32", kDeny}};
  for (bool reversed : {false, true}) {
    std::vector<AclRule> r = six;
    if (reversed) std::reverse(r.begin(), r.end());
    auto acl = compileOk(r, kAllow);
    REQUIRE(acl);
    CHECK(!admits(*acl, "2001:db8::1"));
    CHECK(admits(*acl, "2001:db8:1::1"));
    CHECK(admits(*acl, "2001:db8:1:ffff:ffff:ffff:ffff:ffff"));
    CHECK(!admits(*acl, "2001:db8:2::"));
    CHECK(admits(*acl, "2001:db9::"));
  }
}

TEST("acl: the same block with both actions is an error naming the entry") {
  std::string error;
  CHECK(!Acl::compile({{"1.1.1.1", kAllow}, {"10.0.0.0/8", kAllow}, {"10.0.0.0/8", kDeny}}, kAllow,
                      error));
  CHECK_EQ(error, std::string("entry 2 (\"10.0.0.0/8\"): same block as entry 1 (\"10.0.0.0/8\") "
                              "with the other action"));
  // Spelled differently, still the same block.
  error.clear();
  CHECK(!Acl::compile({{"10.1.2.3/8", kDeny}, {"::ffff:10.0.0.0/104", kAllow}}, kAllow, error));
  CHECK_EQ(error, std::string("entry 1 (\"::ffff:10.0.0.0/104\"): same block as entry 0 "
                              "(\"10.1.2.3/8\") with the other action"));
  error.clear();
  CHECK(!Acl::compile({{"2001:db8::/32", kDeny}, {"2001:DB8::1/32", kAllow}}, kAllow, error));
  CHECK(error.rfind("entry 1 (\"2001:DB8::1/32\"): same block as entry 0", 0) == 0);
  // The first conflicting entry down the list is named, whichever family.
  error.clear();
  CHECK(!Acl::compile({{"::1", kDeny},
                       {"10.0.0.0/8", kDeny},
                       {"10.0.0.0/8", kDeny},
                       {"::1/128", kAllow},
                       {"10.0.0.0/8", kAllow}},
                      kAllow, error));
  CHECK(error.rfind("entry 3 (\"::1/128\"): same block as entry 0 (\"::1\")", 0) == 0);
  // Exact duplicates are fine.
  auto acl =
      compileOk({{"10.0.0.0/8", kDeny}, {"10.0.0.0/8", kDeny}, {"10.9.9.9/8", kDeny}}, kAllow);
  REQUIRE(acl);
  CHECK_EQ(acl->rangeCount(), size_t{4});
  CHECK(!admits(*acl, "10.0.0.1"));
  // Nested blocks with the same start are not the same block.
  CHECK(compileOk({{"10.0.0.0/8", kDeny}, {"10.0.0.0/9", kAllow}}, kAllow));
}

TEST("acl: a parse error names the entry and quotes its text safely") {
  std::string error;
  CHECK(!Acl::compile(
      {{"10.0.0.0/8", kDeny}, {"::1", kAllow}, {"1.2.3.4", kAllow}, {"10.0.0.0/33", kDeny}}, kAllow,
      error));
  CHECK_EQ(error, std::string("entry 3 (\"10.0.0.0/33\"): prefix length over 32"));
  CHECK(!Acl::compile({{"1.2\"\\\n", kDeny}}, kAllow, error));
  CHECK_EQ(error,
           std::string("entry 0 (\"1.2\\x22\\x5c\\x0a\"): unexpected character '\"' in address"));
  CHECK(!Acl::compile({{std::string(1000, '1'), kDeny}}, kAllow, error));
  CHECK(error.size() < 200);
  CHECK(error.find("...\"): address too long") != std::string::npos);
  // The first bad entry is named, before any conflict is looked for.
  CHECK(!Acl::compile({{"1.1.1.1", kAllow}, {"1.1.1.1", kDeny}, {"x", kDeny}}, kAllow, error));
  CHECK(error.rfind("entry 2 (\"x\")", 0) == 0);
}

TEST("acl: host bits below the prefix are ignored") {
  auto acl = compileOk({{"10.1.2.3/8", kDeny}, {"2001:db8::dead:beef/32", kDeny}}, kAllow);
  REQUIRE(acl);
  CHECK(admits(*acl, "9.255.255.255"));
  CHECK(!admits(*acl, "10.0.0.0"));
  CHECK(!admits(*acl, "10.255.255.255"));
  CHECK(admits(*acl, "11.0.0.0"));
  CHECK(!admits(*acl, "2001:db8::"));
  CHECK(!admits(*acl, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
  CHECK(admits(*acl, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"));
  CHECK(admits(*acl, "2001:db9::"));
}

TEST("acl: an IPv4-mapped peer is matched as IPv4, never by IPv6 rules") {
  auto acl = compileOk({{"10.0.0.0/8", kDeny}, {"::/0", kDeny}, {"::ffff:0:0/95", kDeny}}, kAllow);
  REQUIRE(acl);
  CHECK(!admits(*acl, "10.1.2.3"));
  CHECK(!admits(*acl, "::ffff:10.1.2.3"));
  CHECK(admits(*acl, "11.0.0.1"));
  CHECK(admits(*acl, "::ffff:11.0.0.1"));  // ::/0 and ::ffff:0:0/95 are IPv6 only
  CHECK(!admits(*acl, "2001:db8::1"));
  CHECK(!admits(*acl, "::11.0.0.1"));  // compatible, not mapped: IPv6
  CHECK(!admits(*acl, "::fffe:b00:1"));
  CHECK(!admits(*acl, "::1:0:0:0"));  // just above ::ffff:0:0/96
  // A mapped rule applies to plain IPv4 peers too.
  acl = compileOk({{"::ffff:192.168.0.0/112", kAllow}}, kDeny);
  REQUIRE(acl);
  CHECK(admits(*acl, "192.168.4.4"));
  CHECK(admits(*acl, "::ffff:192.168.4.4"));
  CHECK(!admits(*acl, "192.169.0.0"));
  CHECK(!admits(*acl, "::192.168.4.4"));
}

TEST("acl: ::1 and 127.0.0.1 are different families") {
  auto acl = compileOk({{"127.0.0.1", kAllow}}, kDeny);
  REQUIRE(acl);
  CHECK(admits(*acl, "127.0.0.1"));
  CHECK(admits(*acl, "::ffff:127.0.0.1"));
  CHECK(!admits(*acl, "::1"));
  CHECK(!admits(*acl, "::127.0.0.1"));
  acl = compileOk({{"::1", kAllow}}, kDeny);
  REQUIRE(acl);
  CHECK(admits(*acl, "::1"));
  CHECK(!admits(*acl, "127.0.0.1"));
  CHECK(!admits(*acl, "0.0.0.1"));
  CHECK(!admits(*acl, "::ffff:0.0.0.1"));
}

TEST("acl: first and last address of a block, whole spaces, /32 and /128") {
  auto acl = compileOk({{"192.168.0.0/16", kDeny}}, kAllow);
  REQUIRE(acl);
  CHECK(admits(*acl, "192.167.255.255"));
  CHECK(!admits(*acl, "192.168.0.0"));
  CHECK(!admits(*acl, "192.168.255.255"));
  CHECK(admits(*acl, "192.169.0.0"));

  acl = compileOk({{"0.0.0.0/0", kDeny}, {"::/0", kDeny}}, kAllow);
  REQUIRE(acl);
  CHECK_EQ(acl->rangeCount(), size_t{2});
  for (const char* a :
       {"0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"})
    CHECK(!admits(*acl, a));

  acl = compileOk({{"1.2.3.4/32", kDeny}, {"0.0.0.0", kDeny}, {"255.255.255.255", kDeny}}, kAllow);
  REQUIRE(acl);
  CHECK(!admits(*acl, "0.0.0.0"));
  CHECK(admits(*acl, "0.0.0.1"));
  CHECK(admits(*acl, "1.2.3.3"));
  CHECK(!admits(*acl, "1.2.3.4"));
  CHECK(admits(*acl, "1.2.3.5"));
  CHECK(admits(*acl, "255.255.255.254"));
  CHECK(!admits(*acl, "255.255.255.255"));
  CHECK_EQ(acl->rangeCount(), size_t{5 + 1});

  acl = compileOk({{"::/128", kAllow},
                   {"2001:db8::1/128", kAllow},
                   {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", kAllow}},
                  kDeny);
  REQUIRE(acl);
  CHECK(admits(*acl, "::"));
  CHECK(!admits(*acl, "::2"));  // ::1 is not in this list
  CHECK(!admits(*acl, "2001:db8::"));
  CHECK(admits(*acl, "2001:db8::1"));
  CHECK(!admits(*acl, "2001:db8::2"));
  CHECK(!admits(*acl, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"));
  CHECK(admits(*acl, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  CHECK_EQ(acl->rangeCount(), size_t{1 + 5});

  // A nested block ending where its parent ends, and one starting where it starts.
  acl = compileOk({{"10.0.0.0/8", kDeny}, {"10.255.255.0/24", kAllow}, {"10.0.0.0/24", kAllow}},
                  kAllow);
  REQUIRE(acl);
  CHECK(admits(*acl, "10.0.0.255"));
  CHECK(!admits(*acl, "10.0.1.0"));
  CHECK(!admits(*acl, "10.255.254.255"));
  CHECK(admits(*acl, "10.255.255.0"));
  CHECK(admits(*acl, "10.255.255.255"));
  CHECK(admits(*acl, "11.0.0.0"));
  CHECK_EQ(acl->rangeCount(), size_t{3 + 1});  // allow | deny 10.0.1.0-10.255.254.255 | allow
}

TEST("acl: neighbouring ranges with the same action are merged") {
  auto acl = compileOk({{"10.0.0.0/9", kDeny}, {"10.128.0.0/9", kDeny}}, kAllow);
  REQUIRE(acl);
  CHECK_EQ(acl->rangeCount(), size_t{3 + 1});
  acl = compileOk({{"10.0.0.0/8", kDeny}, {"10.1.0.0/16", kDeny}, {"10.1.2.0/24", kDeny}}, kAllow);
  REQUIRE(acl);
  CHECK_EQ(acl->rangeCount(), size_t{3 + 1});
  // Rules that say what the fallback says change nothing.
  acl = compileOk({{"10.0.0.0/8", kAllow}, {"::1", kAllow}}, kAllow);
  REQUIRE(acl);
  CHECK_EQ(acl->rangeCount(), size_t{2});
}

TEST("acl: a peer of another family is denied") {
  auto acl = compileOk({}, kAllow);
  REQUIRE(acl);
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  CHECK(!acl->allows(reinterpret_cast<const sockaddr*>(&un)));
}

// --- against the reference --------------------------------------------------------------

TEST("acl: random nested rule sets agree with a naive longest-prefix scan") {
  std::mt19937 rng(2024);
  auto byte = [&] { return static_cast<uint8_t>(rng()); };
  auto below = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  size_t compiled = 0, rejected = 0, probes = 0, mismatches = 0;
  for (int set = 0; set < 4000; ++set) {
    // A few base addresses per family; rules around them nest and touch.
    RefRule bases[6];
    for (int i = 0; i < 6; ++i) {
      RefRule& b = bases[i];
      b.v6 = i >= 3;
      std::memset(b.addr, 0, 16);
      for (int k = 0; k < (b.v6 ? 16 : 4); ++k) b.addr[k] = byte();
      if (b.v6 && below(4) == 0) {  // near or in ::ffff:0:0/96
        std::memset(b.addr, 0, 10);
        b.addr[10] = b.addr[11] = below(2) ? 0xff : 0xfe;
      }
      if (below(8) == 0) std::memset(b.addr, below(2) ? 0xff : 0x00, b.v6 ? 16 : 4);
    }
    const int n = below(20);
    const bool small = below(2) == 0;  // few prefix lengths: more nesting and duplicates
    std::vector<RefRule> ref;
    std::vector<AclRule> rules;
    for (int i = 0; i < n; ++i) {
      RefRule r = bases[below(6)];
      const int max = r.v6 ? 128 : 32;
      r.prefix = small ? max - 8 * below(max / 8 + 1) + below(2) : below(max + 1);
      r.prefix = std::min(r.prefix, max);
      const int flips = below(3);
      for (int f = 0; f < flips; ++f) {
        const int bit = below(max);
        r.addr[bit / 8] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
      }
      r.action = below(2) ? kAllow : kDeny;
      const int style = below(3);
      rules.push_back({ruleText(r, style), r.action});
      // What parseCidr makes of a long enough block inside ::ffff:0:0/96.
      if (r.v6 && r.prefix >= 96 &&
          std::all_of(r.addr, r.addr + 10, [](uint8_t x) { return !x; }) && r.addr[10] == 0xff &&
          r.addr[11] == 0xff) {
        RefRule four = r;
        four.v6 = false;
        std::memset(four.addr, 0, 16);
        std::memcpy(four.addr, r.addr + 12, 4);
        four.prefix = r.prefix - 96;
        r = four;
      }
      ref.push_back(r);
    }
    const AclAction fallback = below(2) ? kAllow : kDeny;
    bool conflict = false;
    for (size_t i = 0; i < ref.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (refSameBlock(ref[i], ref[j]) && ref[i].action != ref[j].action) conflict = true;
    std::string error;
    auto acl = Acl::compile(rules, fallback, error);
    if (conflict) {
      if (!CHECK(acl == nullptr)) return;
      CHECK(error.find("with the other action") != std::string::npos);
      ++rejected;
      continue;
    }
    if (!acl) {
      FAIL("compile failed: " + error);
      return;
    }
    ++compiled;
    CHECK(acl->rangeCount() <= 2 * ref.size() + 2);

    auto probe = [&](bool v6, const uint8_t* a) {
      ++probes;
      const bool want = refAllows(ref, fallback, v6, a);
      bool got;
      if (v6) {
        sockaddr_in6 s{};
        s.sin6_family = AF_INET6;
        std::memcpy(s.sin6_addr.s6_addr, a, 16);
        got = acl->allowsV6(a);
        if (acl->allows(sa(s)) != got) ++mismatches;
      } else {
        const uint32_t h = uint32_t{a[0]} << 24 | uint32_t{a[1]} << 16 | uint32_t{a[2]} << 8 | a[3];
        got = acl->allowsV4(h);
        sockaddr_in s{};
        s.sin_family = AF_INET;
        s.sin_addr.s_addr = htonl(h);
        sockaddr_in6 m{};
        m.sin6_family = AF_INET6;
        m.sin6_addr.s6_addr[10] = m.sin6_addr.s6_addr[11] = 0xff;
        std::memcpy(m.sin6_addr.s6_addr + 12, a, 4);
        if (acl->allows(sa(s)) != got || acl->allows(sa(m)) != got) ++mismatches;
      }
      if (got != want && ++mismatches < 5) {
        char buf[INET6_ADDRSTRLEN];
        inet_ntop(v6 ? AF_INET6 : AF_INET, a, buf, sizeof buf);
        std::string rs;
        for (const AclRule& r : rules) rs += r.cidr + (r.action == kAllow ? "+ " : "- ");
        FAIL(std::string("at ") + buf + " with " + rs);
      }
    };
    for (const RefRule& r : ref) {
      uint8_t first[16], last[16];
      refBounds(r, first, last);
      const int bytes = r.v6 ? 16 : 4;
      probe(r.v6, first);
      probe(r.v6, last);
      step(first, bytes, -1);
      step(last, bytes, +1);
      probe(r.v6, first);
      probe(r.v6, last);
    }
    for (int i = 0; i < 20; ++i) {
      RefRule p = bases[below(6)];
      const int max = p.v6 ? 128 : 32;
      for (int bit = max - 1 - below(max); bit < max; ++bit)
        if (below(2)) p.addr[bit / 8] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
      probe(p.v6, p.addr);
    }
  }
  CHECK_EQ(mismatches, size_t{0});
  // The sets exercise both outcomes, and mostly compile.
  CHECK(compiled > 2000);
  CHECK(rejected > 100);
  CHECK(probes > 100000);
}

TEST("acl: 100,000 rules compile and look up like the reference") {
  std::mt19937 rng(7);
  std::vector<RefRule> ref;
  std::vector<AclRule> rules;
  for (int i = 0; i < 100000; ++i) {
    RefRule r{};
    r.v6 = i % 4 == 3;
    const int max = r.v6 ? 128 : 32;
    for (int k = 0; k < (r.v6 ? 16 : 4); ++k) r.addr[k] = static_cast<uint8_t>(rng());
    if (r.v6) r.addr[0] = 0x20;  // keep clear of ::ffff:0:0/96
    r.prefix = max - static_cast<int>(rng() % 17);
    // One action per block (hash of the block), so duplicates never conflict.
    uint8_t first[16], last[16];
    refBounds(r, first, last);
    uint32_t h = static_cast<uint32_t>(r.prefix);
    for (uint8_t b : first) h = h * 31 + b;
    r.action = h & 1 ? kAllow : kDeny;
    rules.push_back({ruleText(r, 0), r.action});
    ref.push_back(r);
  }
  std::string error;
  auto acl = Acl::compile(rules, kDeny, error);
  REQUIRE(acl);
  // About two boundaries per Allow block (half of them; Deny ones merge into the fallback).
  CHECK(acl->rangeCount() > 90000);
  CHECK(acl->rangeCount() <= 2 * rules.size() + 2);
  size_t mismatches = 0;
  for (int i = 0; i < 300; ++i) {
    const RefRule& r = ref[rng() % ref.size()];
    uint8_t first[16], last[16];
    refBounds(r, first, last);
    for (const uint8_t* a : {first, last}) {
      const bool got = r.v6 ? acl->allowsV6(a)
                            : acl->allowsV4(uint32_t{a[0]} << 24 | uint32_t{a[1]} << 16 |
                                            uint32_t{a[2]} << 8 | a[3]);
      if (got != refAllows(ref, kDeny, r.v6, a)) ++mismatches;
    }
  }
  CHECK_EQ(mismatches, size_t{0});
}
