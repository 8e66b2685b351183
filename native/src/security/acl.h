// Network ACLs: whether a client's IP address may connect. The IO workers ask at accept and
// again per service before the 101 response, on a compiled Acl they share without locks, so
// the Acl is immutable and a lookup is one binary search that never allocates.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lapps {

enum class AclAction : uint8_t { Allow, Deny };

// One rule as written in the config: an address or block (see parseCidr) and what happens to
// the addresses it covers.
struct AclRule {
  std::string cidr;
  AclAction action;
};

// An address block. IPv4 keeps its 4 bytes in addr[0..3] (network order), the other bytes
// zero, prefix 0-32; IPv6 has prefix 0-128. Bits below the prefix are always zero.
struct Cidr {
  bool v6 = false;
  uint8_t addr[16] = {};
  uint8_t prefix = 0;
  bool operator==(const Cidr&) const = default;
};

// Parses "a.b.c.d", "a.b.c.d/n", "x::y" or "x::y/n"; a bare address is a full-length prefix.
// Host bits set below the prefix are accepted and cleared: 10.1.2.3/8 is 10.0.0.0/8. An
// IPv4-mapped block ::ffff:a.b.c.d/n with n >= 96 becomes a.b.c.d/(n-96), because that is
// how a dual-stack listener reports IPv4 peers; shorter IPv6 blocks stay IPv6. Nothing else
// is accepted: no zone ids, whitespace, signs, empty parts, hex or leading zeros in IPv4
// parts, and the prefix is decimal without leading zeros ("0" itself is fine).
// On failure returns false and sets `error` (`out` is then unspecified).
bool parseCidr(std::string_view text, Cidr& out, std::string& error);

// "a.b.c.d/n" or inet_ntop's "x::y/n", always with the prefix. For a Cidr that parseCidr
// produced, parseCidr reads the text back to the same value.
std::string formatCidr(const Cidr& cidr);

class Acl {
 public:
  // Compiles `rules`; `fallback` applies to addresses no rule covers. The most specific
  // block (longest prefix) wins whatever the order; exact duplicates are fine, the same block
  // with both actions is an error. On bad input returns nullptr and sets `error` to a
  // message naming the entry by its index in `rules` (0-based, as in a JSON pointer), e.g.
  // `entry 3 ("10.0.0.0/33"): prefix length over 32`. O(n log n).
  //
  // IPv4 and IPv6 are separate: an IPv6 rule never matches an IPv4 peer (mapped or not),
  // even ::/0, and ::1 is not 127.0.0.1.
  static std::shared_ptr<const Acl> compile(const std::vector<AclRule>& rules, AclAction fallback,
                                            std::string& error);

  // `peer` as accept() filled it in. AF_INET6 peers in ::ffff:0:0/96 are looked up as
  // IPv4; any family other than AF_INET and AF_INET6 is denied.
  bool allows(const sockaddr* peer) const;
  bool allowsV4(uint32_t addrHostOrder) const;
  // `addr` in network order, as in in6_addr; an IPv4-mapped address is looked up as IPv4.
  bool allowsV6(const uint8_t addr[16]) const;

  // How many ranges the two address spaces are cut into, fallback ranges included (so at
  // least 2: an empty ACL is one range per family). For tests and diagnostics.
  size_t rangeCount() const { return v4Starts_.size() + v6Starts_.size(); }

 private:
  __extension__ typedef unsigned __int128 V6Key;  // an IPv6 address as a number

  Acl() = default;

  // Range i of a family runs from starts[i] up to starts[i + 1] (the last one to the top of
  // the space) and has actions[i]. starts[0] is 0, so every address falls in one range;
  // neighbours differ in action (merged otherwise).
  std::vector<uint32_t> v4Starts_;
  std::vector<AclAction> v4Actions_;
  std::vector<V6Key> v6Starts_;
  std::vector<AclAction> v6Actions_;
};

}  // namespace lapps
