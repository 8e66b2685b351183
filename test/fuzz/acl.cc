// libFuzzer target for the network ACLs. parseCidr must take any text without crashing and
// read its own formatCidr output back to the same block; Acl::compile must fail exactly when
// an entry does not parse or repeats a block with the other action, naming that entry; a
// compiled Acl must answer every probe, and the first and last address of every rule's block
// and their neighbours, as a naive scan for the longest covering prefix does, and be cut
// into exactly as many ranges as that scan has changes of action.
//
// The input is a script. Byte 0 bit 0 is the fallback (set: Deny); then records, each a tag
// byte and its operands (a record cut short ends the script). Bit 3 of the tag is a rule's
// action (set: Deny); tag & 7 is the kind:
//   0, 1  rule, raw text: a length byte (mod 64), then that many bytes
//   2     IPv4 rule: 4 address bytes, a prefix byte (mod 33); bits 4-5 of the tag pick the
//         spelling: a.b.c.d/n, bare a.b.c.d when n is 32, or ::ffff:a.b.c.d/(96+n)
//   3     IPv6 rule: 16 address bytes, a prefix byte (mod 129)
//   4     rule nested in an earlier one that parsed: which (a byte), how much longer its
//         prefix is (a byte, 1-8), and a byte seeding the new bits
//   5     IPv4 probe: 4 bytes;  6  IPv6 probe: 16 bytes
//   7     text for parseCidr only: a length byte (mod 64), then that many bytes
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "security/acl.h"

namespace {

using lapps::AclAction;
using lapps::AclRule;
using lapps::Cidr;

void check(bool ok) {
  if (!ok) std::abort();
}

constexpr size_t kMaxRules = 64;
constexpr size_t kMaxProbes = 64;

struct Reader {
  const uint8_t* p;
  size_t left;
  bool take(size_t n, const uint8_t*& out) {
    if (left < n) return false;
    out = p;
    p += n;
    left -= n;
    return true;
  }
};

struct Addr {
  bool v6;
  uint8_t b[16];  // IPv4 in b[0..3]
};

bool isMapped(const uint8_t* a) {
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, kMapped, 12) == 0;
}

// Is bit `bit` (0 = most significant) set?
bool bitAt(const uint8_t* a, int bit) {
  return (a[bit / 8] >> (7 - bit % 8)) & 1;
}

void setBit(uint8_t* a, int bit, bool on) {
  const auto m = static_cast<uint8_t>(0x80 >> (bit % 8));
  a[bit / 8] = on ? (a[bit / 8] | m) : (a[bit / 8] & ~m);
}

// parseCidr's promises about what it returns.
void checkParsed(const Cidr& c) {
  const int max = c.v6 ? 128 : 32;
  check(c.prefix <= max);
  for (int bit = c.prefix; bit < 128; ++bit) check(!bitAt(c.addr, bit));
  check(!(c.v6 && c.prefix >= 96 && isMapped(c.addr)));  // would have become IPv4
}

// parseCidr on any text; when it accepts, formatCidr and back must give the same block.
bool parseChecked(std::string_view text, Cidr& out) {
  std::string error;
  if (!lapps::parseCidr(text, out, error)) {
    check(!error.empty());
    return false;
  }
  checkParsed(out);
  // Accepted text is address characters, then maybe '/' and a decimal without leading zeros.
  const size_t slash = text.find('/');
  const std::string_view addr = text.substr(0, slash);
  check(!addr.empty() && addr.find_first_not_of("0123456789abcdefABCDEF:.") == addr.npos);
  if (slash != text.npos) {
    const std::string_view digits = text.substr(slash + 1);
    check(!digits.empty() && digits.size() <= 3 &&
          digits.find_first_not_of("0123456789") == digits.npos);
    check(digits.size() == 1 || digits[0] != '0');
  }
  const std::string again = lapps::formatCidr(out);
  Cidr back;
  check(lapps::parseCidr(again, back, error));
  check(back == out);
  return true;
}

std::string text(const Addr& a, int prefix, bool bare, bool mapped) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(a.v6 ? AF_INET6 : AF_INET, a.b, buf, sizeof buf);
  std::string s = mapped ? std::string("::ffff:") + buf : std::string(buf);
  if (bare) return s;
  return s + "/" + std::to_string(mapped ? 96 + prefix : prefix);
}

// --- the naive reference -------------------------------------------------------------------

struct Rule {
  Cidr cidr;
  AclAction action;
};

bool covers(const Cidr& c, bool v6, const uint8_t* a) {
  if (c.v6 != v6) return false;
  for (int bit = 0; bit < c.prefix; ++bit)
    if (bitAt(c.addr, bit) != bitAt(a, bit)) return false;
  return true;
}

// The longest covering prefix decides; no mapping (the compiled table of one family).
AclAction rawLookup(const std::vector<Rule>& rules, AclAction fallback, bool v6, const uint8_t* a) {
  int best = -1;
  AclAction action = fallback;
  for (const Rule& r : rules) {
    if (r.cidr.prefix > best && covers(r.cidr, v6, a)) {
      best = r.cidr.prefix;
      action = r.action;
    }
  }
  return action;
}

// What a peer gets: IPv4-mapped IPv6 addresses are looked up as IPv4.
bool refAllows(const std::vector<Rule>& rules, AclAction fallback, const Addr& a) {
  if (a.v6 && isMapped(a.b)) {
    uint8_t four[16] = {};
    std::memcpy(four, a.b + 12, 4);
    return rawLookup(rules, fallback, false, four) == AclAction::Allow;
  }
  return rawLookup(rules, fallback, a.v6, a.b) == AclAction::Allow;
}

// Adds +1 or -1 to the address as a number of 4 or 16 bytes. False when it wraps.
bool step(Addr& a, int delta) {
  for (int i = a.v6 ? 15 : 3; i >= 0; --i) {
    a.b[i] = static_cast<uint8_t>(a.b[i] + delta);
    if (a.b[i] != (delta > 0 ? 0x00 : 0xff)) return true;
  }
  return false;
}

Addr firstOf(const Cidr& c) {
  Addr a{c.v6, {}};
  std::memcpy(a.b, c.addr, 16);
  return a;
}

Addr lastOf(const Cidr& c) {
  Addr a = firstOf(c);
  for (int bit = c.prefix; bit < (c.v6 ? 128 : 32); ++bit) setBit(a.b, bit, true);
  return a;
}

// Ranges the reference cuts one family into: 1 + the places where the action changes, which
// can only be the first address of a block or the one after its last.
size_t refRanges(const std::vector<Rule>& rules, AclAction fallback, bool v6) {
  std::vector<Addr> edges;
  for (const Rule& r : rules) {
    if (r.cidr.v6 != v6) continue;
    Addr first = firstOf(r.cidr), after = lastOf(r.cidr);
    edges.push_back(first);
    if (step(after, +1)) edges.push_back(after);
  }
  auto less = [](const Addr& x, const Addr& y) { return std::memcmp(x.b, y.b, 16) < 0; };
  auto same = [](const Addr& x, const Addr& y) { return std::memcmp(x.b, y.b, 16) == 0; };
  std::sort(edges.begin(), edges.end(), less);
  edges.erase(std::unique(edges.begin(), edges.end(), same), edges.end());
  size_t n = 1;
  for (const Addr& e : edges) {
    Addr before = e;
    if (!step(before, -1)) continue;  // address 0 starts the first range anyway
    if (rawLookup(rules, fallback, v6, e.b) != rawLookup(rules, fallback, v6, before.b)) ++n;
  }
  return n;
}

// --- compiled against the reference ----------------------------------------------------------

void probe(const lapps::Acl& acl, const std::vector<Rule>& rules, AclAction fallback,
           const Addr& a) {
  const bool want = refAllows(rules, fallback, a);
  if (a.v6) {
    check(acl.allowsV6(a.b) == want);
    sockaddr_in6 s{};
    s.sin6_family = AF_INET6;
    std::memcpy(s.sin6_addr.s6_addr, a.b, 16);
    check(acl.allows(reinterpret_cast<const sockaddr*>(&s)) == want);
    return;
  }
  const uint32_t h =
      uint32_t{a.b[0]} << 24 | uint32_t{a.b[1]} << 16 | uint32_t{a.b[2]} << 8 | a.b[3];
  check(acl.allowsV4(h) == want);
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_addr.s_addr = htonl(h);
  check(acl.allows(reinterpret_cast<const sockaddr*>(&s)) == want);
  // The same peer on a dual-stack listener.
  sockaddr_in6 m{};
  m.sin6_family = AF_INET6;
  m.sin6_addr.s6_addr[10] = m.sin6_addr.s6_addr[11] = 0xff;
  std::memcpy(m.sin6_addr.s6_addr + 12, a.b, 4);
  check(acl.allows(reinterpret_cast<const sockaddr*>(&m)) == want);
  check(acl.allowsV6(m.sin6_addr.s6_addr) == want);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const AclAction fallback = data[0] & 1 ? AclAction::Deny : AclAction::Allow;
  Reader in{data + 1, size - 1};
  std::vector<AclRule> rules;
  std::vector<bool> parsed;    // per rule
  std::vector<Rule> accepted;  // the rules that parsed, for nesting and the reference
  std::vector<Addr> probes;
  const uint8_t* t;
  while (in.take(1, t)) {
    const uint8_t tag = *t;
    const AclAction action = tag & 8 ? AclAction::Deny : AclAction::Allow;
    const int kind = tag & 7;
    std::string ruleText;
    bool isRule = true;
    if (kind == 0 || kind == 1 || kind == 7) {
      const uint8_t* n;
      const uint8_t* s;
      if (!in.take(1, n) || !in.take(*n % 64, s)) break;
      ruleText.assign(reinterpret_cast<const char*>(s), *n % 64);
      if (kind == 7) {
        Cidr c;
        parseChecked(ruleText, c);
        isRule = false;
      }
    } else if (kind == 2) {
      const uint8_t* a;
      if (!in.take(5, a)) break;
      Addr addr{false, {a[0], a[1], a[2], a[3]}};
      const int prefix = a[4] % 33;
      const int spelling = (tag >> 4) & 3;
      ruleText = text(addr, prefix, spelling == 1 && prefix == 32, spelling == 2);
    } else if (kind == 3) {
      const uint8_t* a;
      if (!in.take(17, a)) break;
      Addr addr{true, {}};
      std::memcpy(addr.b, a, 16);
      ruleText = text(addr, a[16] % 129, false, false);
    } else if (kind == 4) {
      const uint8_t* a;
      if (!in.take(3, a)) break;
      if (accepted.empty()) continue;
      const Cidr& parent = accepted[a[0] % accepted.size()].cidr;
      const int max = parent.v6 ? 128 : 32;
      const int prefix = std::min(max, parent.prefix + 1 + a[1] % 8);
      Addr addr = firstOf(parent);
      uint32_t seed = a[2] * 2654435761u;
      for (int bit = parent.prefix; bit < prefix; ++bit, seed = seed * 1103515245u + 12345u)
        setBit(addr.b, bit, (seed >> 16) & 1);
      ruleText = text(addr, prefix, false, false);
    } else {
      const uint8_t* a;
      const size_t n = kind == 5 ? 4 : 16;
      if (!in.take(n, a)) break;
      if (probes.size() < kMaxProbes) {
        Addr p{kind == 6, {}};
        std::memcpy(p.b, a, n);
        probes.push_back(p);
      }
      isRule = false;
    }
    if (!isRule || rules.size() >= kMaxRules) continue;
    Cidr c;
    const bool ok = parseChecked(ruleText, c);
    rules.push_back({ruleText, action});
    parsed.push_back(ok);
    if (ok) accepted.push_back({c, action});
  }

  // Which entry compile must name: the first that does not parse, else the first that
  // repeats an earlier block with the other action.
  size_t bad = SIZE_MAX;
  for (size_t i = 0; i < rules.size() && bad == SIZE_MAX; ++i)
    if (!parsed[i]) bad = i;
  for (size_t i = 0; i < accepted.size() && bad == SIZE_MAX; ++i)
    for (size_t j = 0; j < i; ++j)
      if (accepted[i].cidr == accepted[j].cidr && accepted[i].action != accepted[j].action) {
        bad = i;  // all parsed, so accepted[i] is rules[i]
        break;
      }

  std::string error;
  const auto acl = lapps::Acl::compile(rules, fallback, error);
  if (bad != SIZE_MAX) {
    check(acl == nullptr);
    check(error.rfind("entry " + std::to_string(bad) + " (", 0) == 0);
    return 0;
  }
  check(acl != nullptr);
  check(acl->rangeCount() ==
        refRanges(accepted, fallback, false) + refRanges(accepted, fallback, true));

  for (const Addr& p : probes) probe(*acl, accepted, fallback, p);
  for (const Rule& r : accepted) {
    for (Addr edge : {firstOf(r.cidr), lastOf(r.cidr)}) {
      probe(*acl, accepted, fallback, edge);
      Addr next = edge, prev = edge;
      if (step(next, +1)) probe(*acl, accepted, fallback, next);
      if (step(prev, -1)) probe(*acl, accepted, fallback, prev);
    }
  }
  // The ends of both spaces, and the IPv6 addresses just outside ::ffff:0:0/96.
  Addr fixed[] = {{false, {}},
                  {false, {255, 255, 255, 255}},
                  {true, {}},
                  {true, {}},  // all ones, below
                  {true, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff}},
                  {true, {0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}};
  std::memset(fixed[3].b, 0xff, 16);
  for (const Addr& p : fixed) probe(*acl, accepted, fallback, p);
  return 0;
}
