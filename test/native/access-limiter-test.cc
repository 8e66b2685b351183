// The access log's bound on repeated refusals (core/access-log.h).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>
#include <vector>

#include "core/access-log.h"
#include "test.h"

using namespace lapps;

namespace {

PeerAddress address(const char* text) {
  PeerAddress a{};
  if (inet_pton(AF_INET, text, &a.v4.sin_addr) == 1) {
    a.v4.sin_family = AF_INET;
  } else {
    inet_pton(AF_INET6, text, &a.v6.sin6_addr);
    a.v6.sin6_family = AF_INET6;
  }
  return a;
}

}  // namespace

TEST("access limiter: 10 lines per address per window, the rest counted") {
  AccessLimiter l;
  const PeerAddress a = address("203.0.113.9");
  CHECK(l.note(a) == AccessLimiter::Verdict::LogAndOpen);
  for (uint32_t i = 1; i < AccessLimiter::kLinesPerWindow; ++i) {
    CHECK(l.note(a) == AccessLimiter::Verdict::Log);
  }
  for (int i = 0; i < 30; ++i) CHECK(l.note(a) == AccessLimiter::Verdict::Suppress);
  CHECK(l.note(address("198.51.100.1")) == AccessLimiter::Verdict::Log);
  std::vector<AccessLimiter::Suppressed> out;
  uint64_t others = 99;
  l.endWindow(out, others);
  CHECK_EQ(out.size(), size_t(1));
  CHECK_EQ(out[0].count, uint64_t(30));
  CHECK_EQ(others, uint64_t(0));
  CHECK_EQ(l.trackedAddresses(), size_t(0));
  // A new window: lines again.
  CHECK(l.note(a) == AccessLimiter::Verdict::LogAndOpen);
}

TEST("access limiter: an IPv6 /64 is one address; a mapped IPv4 address is the IPv4 one") {
  AccessLimiter l;
  for (uint32_t i = 0; i < AccessLimiter::kLinesPerWindow; ++i) {
    // Rotating the low 64 bits gains nothing.
    char text[64];
    snprintf(text, sizeof text, "2001:db8:1:2::%x", i + 1);
    CHECK(l.note(address(text)) != AccessLimiter::Verdict::Suppress);
  }
  CHECK(l.note(address("2001:db8:1:2:ffff::1")) == AccessLimiter::Verdict::Suppress);
  CHECK(l.note(address("2001:db8:1:3::1")) == AccessLimiter::Verdict::Log);
  for (uint32_t i = 0; i < AccessLimiter::kLinesPerWindow; ++i) l.note(address("192.0.2.1"));
  CHECK(l.note(address("::ffff:192.0.2.1")) == AccessLimiter::Verdict::Suppress);
}

TEST("access limiter: the table is bounded; further addresses are counted together") {
  AccessLimiter l;
  for (size_t i = 0; i < AccessLimiter::kMaxAddresses; ++i) {
    PeerAddress a{};
    a.v4.sin_family = AF_INET;
    a.v4.sin_addr.s_addr = htonl(uint32_t(0x0A000000 + i));
    CHECK(l.note(a) != AccessLimiter::Verdict::Suppress);
  }
  CHECK_EQ(l.trackedAddresses(), AccessLimiter::kMaxAddresses);
  CHECK(l.note(address("198.51.100.7")) == AccessLimiter::Verdict::Suppress);
  CHECK(l.note(address("198.51.100.8")) == AccessLimiter::Verdict::Suppress);
  CHECK_EQ(l.trackedAddresses(), AccessLimiter::kMaxAddresses);
  std::vector<AccessLimiter::Suppressed> out;
  uint64_t others = 0;
  l.endWindow(out, others);
  CHECK_EQ(others, uint64_t(2));
  CHECK_EQ(out.size(), size_t(0));
}
