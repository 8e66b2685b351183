#include "security/acl.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace lapps {

namespace {

bool isAddressChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
         c == '.';
}

// `c` for an error message: printable as itself, anything else as \xNN.
std::string showChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7F) return std::string("'") + c + "'";
  static const char* hex = "0123456789abcdef";
  return std::string("'\\x") + hex[u >> 4] + hex[u & 15] + "'";
}

// An entry's text for an error message: quoted, escaped, cut short (it may be anything).
std::string quote(std::string_view s) {
  constexpr size_t kMax = 64;
  std::string q = "\"";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto u = static_cast<unsigned char>(s[i]);
    if (u >= 0x20 && u < 0x7F && s[i] != '"' && s[i] != '\\') {
      q += s[i];
    } else {
      static const char* hex = "0123456789abcdef";
      q.append("\\x").append(1, hex[u >> 4]).append(1, hex[u & 15]);
    }
  }
  if (s.size() > kMax) q += "...";
  return q + "\"";
}

std::string entryLabel(size_t index, std::string_view text) {
  return "entry " + std::to_string(index) + " (" + quote(text) + ")";
}

bool isMapped(const uint8_t a[16]) {
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, kMapped, sizeof kMapped) == 0;
}

void clearHostBits(Cidr& c) {
  for (int i = 0; i < 16; ++i) {
    const int keep = std::clamp(c.prefix - 8 * i, 0, 8);
    c.addr[i] &= static_cast<uint8_t>(0xFF00u >> keep);
  }
}

// One rule as an address range, for sorting and sweeping. Key is uint32_t or the 128-bit
// V6Key; `index` is the entry in the rules, for messages.
template <class Key>
struct Block {
  Key start, end;
  uint8_t prefix;
  AclAction action;
  size_t index;
};

template <class Key>
Block<Key> makeBlock(const Cidr& c, AclAction action, size_t index) {
  constexpr int kBits = sizeof(Key) * 8;
  Key a = 0;
  for (int i = 0; i < kBits / 8; ++i) a = (a << 8) | c.addr[i];
  // A shift by the full width is undefined, hence the prefix 0 case.
  const Key host = c.prefix == 0 ? ~Key(0) : (Key(1) << (kBits - c.prefix)) - 1;
  return {a & ~host, a | host, c.prefix, action, index};
}

// Ascending start, the wider block first: parents come before what they contain.
template <class Key>
bool blockOrder(const Block<Key>& a, const Block<Key>& b) {
  if (a.start != b.start) return a.start < b.start;
  if (a.prefix != b.prefix) return a.prefix < b.prefix;
  return a.index < b.index;
}

// After sorting, the smallest entry index that repeats an earlier block with the other
// action (the one a reader going down the list would stop at), or SIZE_MAX. `other` is set
// to the earlier entry.
template <class Key>
size_t firstConflict(const std::vector<Block<Key>>& blocks, size_t& other) {
  size_t found = SIZE_MAX;
  size_t head = 0;  // first (lowest-index) entry of the current run of equal blocks
  for (size_t i = 1; i < blocks.size(); ++i) {
    const Block<Key>& b = blocks[i];
    if (b.start != blocks[head].start || b.prefix != blocks[head].prefix) {
      head = i;
    } else if (b.action != blocks[head].action && b.index < found) {
      found = b.index;
      other = blocks[head].index;
    }
  }
  return found;
}

// Cuts one family's address space into ranges from `blocks` (sorted by blockOrder, free of
// conflicts). CIDR blocks are nested or disjoint, so a sweep keeping the open blocks on a
// stack, innermost on top, gives each address its innermost block's action.
template <class Key>
void buildRanges(const std::vector<Block<Key>>& blocks, AclAction fallback,
                 std::vector<Key>& starts, std::vector<AclAction>& actions) {
  constexpr Key kTop = ~Key(0);
  auto emit = [&](Key from, AclAction action) {
    if (!actions.empty() && actions.back() == action) return;  // merge with the previous
    starts.push_back(from);
    actions.push_back(action);
  };
  Key pos = 0;        // first address not yet given a range
  bool full = false;  // ... unless the whole space is done (pos cannot go past the top)
  auto close = [&](const Block<Key>& b) {
    if (full || pos > b.end) return;  // a nested block (or a duplicate) took the rest
    emit(pos, b.action);
    if (b.end == kTop) {
      full = true;
    } else {
      pos = b.end + 1;
    }
  };
  std::vector<const Block<Key>*> open;
  for (const Block<Key>& b : blocks) {
    while (!open.empty() && open.back()->end < b.start) {
      close(*open.back());
      open.pop_back();
    }
    if (pos < b.start) {
      emit(pos, open.empty() ? fallback : open.back()->action);
      pos = b.start;
    }
    open.push_back(&b);
  }
  while (!open.empty()) {
    close(*open.back());
    open.pop_back();
  }
  if (!full) emit(pos, fallback);
}

template <class Key>
bool lookup(const std::vector<Key>& starts, const std::vector<AclAction>& actions, Key addr) {
  // starts[0] == 0, so upper_bound never returns begin().
  const size_t i = std::upper_bound(starts.begin(), starts.end(), addr) - starts.begin() - 1;
  return actions[i] == AclAction::Allow;
}

}  // namespace

bool parseCidr(std::string_view text, Cidr& out, std::string& error) {
  if (text.empty()) {
    error = "empty address";
    return false;
  }
  const size_t slash = text.find('/');
  const std::string_view addrText = text.substr(0, slash);
  if (addrText.empty()) {
    error = "missing address before '/'";
    return false;
  }
  for (char c : addrText) {
    if (c == '%') {
      error = "zone ids (%...) are not supported";
      return false;
    }
    if (!isAddressChar(c)) {
      error = "unexpected character " + showChar(c) + " in address";
      return false;
    }
  }
  // inet_pton needs a NUL-terminated copy; the longest IPv6 text is 45 characters.
  char buf[INET6_ADDRSTRLEN];
  if (addrText.size() >= sizeof buf) {
    error = "address too long";
    return false;
  }
  std::memcpy(buf, addrText.data(), addrText.size());
  buf[addrText.size()] = '\0';
  out = Cidr{};
  out.v6 = addrText.find(':') != std::string_view::npos;
  if (inet_pton(out.v6 ? AF_INET6 : AF_INET, buf, out.addr) != 1) {
    error = out.v6 ? "not an IPv6 address" : "not an IPv4 address";
    return false;
  }
  const int maxPrefix = out.v6 ? 128 : 32;
  int prefix = maxPrefix;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    if (digits.empty()) {
      error = "missing prefix length after '/'";
      return false;
    }
    for (char c : digits) {
      if (c < '0' || c > '9') {
        error = "unexpected character " + showChar(c) + " in prefix length";
        return false;
      }
    }
    if (digits.size() > 1 && digits[0] == '0') {
      error = "leading zero in prefix length";
      return false;
    }
    prefix = 0;
    for (char c : digits) {
      prefix = prefix * 10 + (c - '0');
      if (prefix > maxPrefix) {  // checked per digit, so no overflow on long inputs
        error = "prefix length over " + std::to_string(maxPrefix);
        return false;
      }
    }
  }
  out.prefix = static_cast<uint8_t>(prefix);
  if (out.v6 && prefix >= 96 && isMapped(out.addr)) {
    uint8_t v4[4];
    std::memcpy(v4, out.addr + 12, 4);
    out = Cidr{};
    std::memcpy(out.addr, v4, 4);
    out.prefix = static_cast<uint8_t>(prefix - 96);
  }
  clearHostBits(out);
  return true;
}

std::string formatCidr(const Cidr& cidr) {
  char buf[INET6_ADDRSTRLEN + 4];
  if (!inet_ntop(cidr.v6 ? AF_INET6 : AF_INET, cidr.addr, buf, INET6_ADDRSTRLEN)) return {};
  const size_t n = std::strlen(buf);
  std::snprintf(buf + n, sizeof buf - n, "/%u", unsigned{cidr.prefix});
  return buf;
}

std::shared_ptr<const Acl> Acl::compile(const std::vector<AclRule>& rules, AclAction fallback,
                                        std::string& error) {
  std::vector<Block<uint32_t>> v4;
  std::vector<Block<V6Key>> v6;
  for (size_t i = 0; i < rules.size(); ++i) {
    Cidr c;
    std::string why;
    if (!parseCidr(rules[i].cidr, c, why)) {
      error = entryLabel(i, rules[i].cidr) + ": " + why;
      return nullptr;
    }
    if (c.v6) {
      v6.push_back(makeBlock<V6Key>(c, rules[i].action, i));
    } else {
      v4.push_back(makeBlock<uint32_t>(c, rules[i].action, i));
    }
  }
  std::sort(v4.begin(), v4.end(), blockOrder<uint32_t>);
  std::sort(v6.begin(), v6.end(), blockOrder<V6Key>);

  size_t other4 = 0, other6 = 0;
  const size_t bad4 = firstConflict(v4, other4), bad6 = firstConflict(v6, other6);
  if (bad4 != SIZE_MAX || bad6 != SIZE_MAX) {
    const size_t bad = std::min(bad4, bad6), other = bad4 < bad6 ? other4 : other6;
    error = entryLabel(bad, rules[bad].cidr) + ": same block as " +
            entryLabel(other, rules[other].cidr) + " with the other action";
    return nullptr;
  }

  std::shared_ptr<Acl> acl(new Acl);
  buildRanges(v4, fallback, acl->v4Starts_, acl->v4Actions_);
  buildRanges(v6, fallback, acl->v6Starts_, acl->v6Actions_);
  acl->v4Starts_.shrink_to_fit();
  acl->v4Actions_.shrink_to_fit();
  acl->v6Starts_.shrink_to_fit();
  acl->v6Actions_.shrink_to_fit();
  return acl;
}

bool Acl::allows(const sockaddr* peer) const {
  if (peer->sa_family == AF_INET) {
    return allowsV4(ntohl(reinterpret_cast<const sockaddr_in*>(peer)->sin_addr.s_addr));
  }
  if (peer->sa_family == AF_INET6) {
    return allowsV6(reinterpret_cast<const sockaddr_in6*>(peer)->sin6_addr.s6_addr);
  }
  return false;
}

bool Acl::allowsV4(uint32_t addrHostOrder) const {
  return lookup(v4Starts_, v4Actions_, addrHostOrder);
}

bool Acl::allowsV6(const uint8_t addr[16]) const {
  if (isMapped(addr)) {
    return allowsV4(uint32_t{addr[12]} << 24 | uint32_t{addr[13]} << 16 | uint32_t{addr[14]} << 8 |
                    addr[15]);
  }
  V6Key a = 0;
  for (int i = 0; i < 16; ++i) a = (a << 8) | addr[i];
  return lookup(v6Starts_, v6Actions_, a);
}

}  // namespace lapps
