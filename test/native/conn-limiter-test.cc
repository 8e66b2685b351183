// Connection admission: server-wide count, per-address count, per-address rate, IPv6 /64.
#include <arpa/inet.h>
#include <netinet/in.h>

#include "security/conn-limiter.h"
#include "test.h"

using namespace lapps;
using namespace lapps::test;

namespace {

struct Addr {
  sockaddr_storage ss{};
  explicit Addr(const char* text) {
    if (inet_pton(AF_INET, text, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
      ss.ss_family = AF_INET;
    } else {
      ss.ss_family = AF_INET6;
      inet_pton(AF_INET6, text, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr);
    }
  }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

using V = ConnLimiter::Verdict;

}  // namespace

TEST("conn limiter: nothing configured is inactive and counts only the total") {
  ConnLimiter l(ConnLimits{});
  CHECK(!l.active());
  Addr a("10.0.0.1");
  for (int i = 0; i < 1000; ++i) CHECK_EQ(l.admit(a.sa(), 0), V::Ok);
  CHECK_EQ(l.connections(), 1000u);
  CHECK_EQ(l.trackedAddresses(), size_t{0});
}

TEST("conn limiter: server-wide limit") {
  ConnLimiter l(ConnLimits{.maxConnections = 3});
  CHECK(l.active());
  Addr a("10.0.0.1"), b("10.0.0.2");
  CHECK_EQ(l.admit(a.sa(), 0), V::Ok);
  CHECK_EQ(l.admit(b.sa(), 0), V::Ok);
  CHECK_EQ(l.admit(a.sa(), 0), V::Ok);
  CHECK_EQ(l.admit(b.sa(), 0), V::ServerFull);
  CHECK_EQ(l.connections(), 3u);
  l.release(a.sa());
  CHECK_EQ(l.admit(b.sa(), 0), V::Ok);
}

TEST("conn limiter: per-address limit; IPv6 counted per /64, mapped IPv4 as IPv4") {
  ConnLimiter l(ConnLimits{.maxPerAddress = 2});
  Addr a("10.0.0.1"), mapped("::ffff:10.0.0.1"), other("10.0.0.2");
  CHECK_EQ(l.admit(a.sa(), 0), V::Ok);
  CHECK_EQ(l.admit(mapped.sa(), 0), V::Ok);
  CHECK_EQ(l.admit(a.sa(), 0), V::AddressFull);
  CHECK_EQ(l.admit(other.sa(), 0), V::Ok);
  Addr v6a("2001:db8:1:2::1"), v6b("2001:db8:1:2:ffff::9"), v6c("2001:db8:1:3::1");
  CHECK_EQ(l.admit(v6a.sa(), 0), V::Ok);
  CHECK_EQ(l.admit(v6b.sa(), 0), V::Ok);
  CHECK_EQ(l.admit(v6a.sa(), 0), V::AddressFull);
  CHECK_EQ(l.admit(v6c.sa(), 0), V::Ok);
  l.release(v6b.sa());
  CHECK_EQ(l.admit(v6a.sa(), 0), V::Ok);
  // Released to zero: entries are dropped.
  l.release(a.sa());
  l.release(a.sa());
  l.release(other.sa());
  l.release(v6a.sa());
  l.release(v6a.sa());
  l.release(v6c.sa());
  CHECK_EQ(l.trackedAddresses(), size_t{0});
  CHECK_EQ(l.connections(), 0u);
}

TEST("conn limiter: per-address rate, refilled with time") {
  ConnLimiter l(ConnLimits{.newPerAddressPerSec = 4});
  Addr a("192.0.2.7"), b("192.0.2.8");
  for (int i = 0; i < 4; ++i) CHECK_EQ(l.admit(a.sa(), 1000), V::Ok);
  CHECK_EQ(l.admit(a.sa(), 1000), V::AddressRate);
  CHECK_EQ(l.admit(b.sa(), 1000), V::Ok);           // another address is not affected
  CHECK_EQ(l.admit(a.sa(), 1100), V::AddressRate);  // 0.4 tokens
  CHECK_EQ(l.admit(a.sa(), 1250), V::Ok);           // 1 token after 250 ms
  CHECK_EQ(l.admit(a.sa(), 1250), V::AddressRate);
  CHECK_EQ(l.admit(a.sa(), 5000), V::Ok);  // bucket full again (capped at 4)
  for (int i = 0; i < 3; ++i) CHECK_EQ(l.admit(a.sa(), 5000), V::Ok);
  CHECK_EQ(l.admit(a.sa(), 5000), V::AddressRate);
  CHECK_EQ(l.connections(), 10u);
}

TEST("conn limiter: idle entries are swept, held ones kept") {
  ConnLimiter l(ConnLimits{.newPerAddressPerSec = 1});
  for (uint32_t i = 0; i < 200000; ++i) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(0x0A000000u + i);
    const sockaddr* sa = reinterpret_cast<const sockaddr*>(&sin);
    CHECK_EQ(l.admit(sa, uint64_t(i) * 10), V::Ok);
    l.release(sa);
  }
  // Each entry is idle one second after its connection: far fewer than 200,000 remain.
  CHECK(l.trackedAddresses() < size_t{64} * 4096);
  CHECK_EQ(l.connections(), 0u);
}

TEST("conn limiter: two steps (address learned after accept) match admit and release") {
  ConnLimiter l(ConnLimits{.maxConnections = 3, .maxPerAddress = 1});
  Addr a("192.0.2.1"), b("192.0.2.2");
  // Three connections from one proxy: only the total is counted at accept.
  CHECK_EQ(l.admitTotal(), V::Ok);
  CHECK_EQ(l.admitTotal(), V::Ok);
  CHECK_EQ(l.admitTotal(), V::Ok);
  CHECK_EQ(l.admitTotal(), V::ServerFull);
  CHECK_EQ(l.connections(), 3u);
  // Their clients, once known, each within their own per-address limit.
  CHECK_EQ(l.admitAddress(a.sa(), 0), V::Ok);
  CHECK_EQ(l.admitAddress(b.sa(), 0), V::Ok);
  CHECK_EQ(l.admitAddress(a.sa(), 0), V::AddressFull);
  l.releaseTotal();  // the refused one: its total only
  CHECK_EQ(l.connections(), 2u);
  l.release(a.sa());  // both steps at once
  CHECK_EQ(l.connections(), 1u);
  CHECK_EQ(l.admit(a.sa(), 0), V::Ok);  // a's count went back to 0
  l.releaseAddress(b.sa());
  l.releaseTotal();
  l.release(a.sa());
  CHECK_EQ(l.connections(), 0u);
  CHECK_EQ(l.trackedAddresses(), size_t{0});
}
