// One client address as a hashable key, for the tables that count per client (the
// per-IP connection limits, the access log's refusal bound). An IPv4 address (or an
// IPv4-mapped IPv6 one) is itself; an IPv6 address is its /64 prefix, the block one
// subscriber gets, so a client cannot make itself many by rotating the low bits.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace lapps {

struct AddressKey {
  uint64_t hi, lo;  // IPv4: hi = 0, lo = the address; IPv6: the /64 prefix in hi, lo = 1
  bool operator==(const AddressKey&) const = default;

  static AddressKey of(const sockaddr* peer) {
    if (peer->sa_family == AF_INET6) {
      const uint8_t* a = reinterpret_cast<const sockaddr_in6*>(peer)->sin6_addr.s6_addr;
      if (IN6_IS_ADDR_V4MAPPED(reinterpret_cast<const in6_addr*>(a))) {
        uint32_t v4;
        std::memcpy(&v4, a + 12, 4);
        return AddressKey{0, v4};
      }
      uint64_t hi;
      std::memcpy(&hi, a, 8);
      return AddressKey{hi, 1};
    }
    return AddressKey{0, reinterpret_cast<const sockaddr_in*>(peer)->sin_addr.s_addr};
  }
};

struct AddressKeyHash {
  size_t operator()(const AddressKey& k) const {
    uint64_t x = k.hi * 0x9E3779B97F4A7C15ull ^ k.lo;
    x ^= x >> 32;
    return size_t(x * 0xD6E8FEB86659FD93ull);
  }
};

}  // namespace lapps
