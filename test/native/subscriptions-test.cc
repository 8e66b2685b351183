// A worker's broadcast subscriptions (core/subscriptions.h).
#include <cstdint>
#include <vector>

#include "core/subscriptions.h"
#include "test.h"

using namespace lapps;

namespace {

std::vector<uint64_t> subscribersOf(const Subscriptions& s, uint64_t channel) {
  const std::vector<uint64_t>* list = s.of(channel);
  return list ? *list : std::vector<uint64_t>{};
}

}  // namespace

TEST("subscriptions: in order, once each, and both lists kept in step") {
  Subscriptions s;
  std::vector<uint64_t> a, b;
  s.add(a, 7, 100);
  s.add(b, 7, 200);
  s.add(a, 7, 100);  // already subscribed: no second entry
  s.add(a, 9, 100);
  CHECK(subscribersOf(s, 7) == (std::vector<uint64_t>{100, 200}));
  CHECK(subscribersOf(s, 9) == (std::vector<uint64_t>{100}));
  CHECK(a == (std::vector<uint64_t>{7, 9}));
  CHECK(b == (std::vector<uint64_t>{7}));
  CHECK(s.of(8) == nullptr);

  s.remove(a, 7, 100);
  CHECK(subscribersOf(s, 7) == (std::vector<uint64_t>{200}));
  CHECK(a == (std::vector<uint64_t>{9}));
  s.remove(a, 8, 100);  // not subscribed: nothing changes
  CHECK(a == (std::vector<uint64_t>{9}));
  CHECK_EQ(s.channels(), size_t(2));
}

TEST("subscriptions: a connection going away leaves no trace, nor do empty channels") {
  Subscriptions s;
  std::vector<uint64_t> a, b;
  s.add(a, 1, 100);
  s.add(a, 2, 100);
  s.add(b, 2, 200);
  s.removeAll(a, 100);
  CHECK(a.empty());
  CHECK(s.of(1) == nullptr);
  CHECK(subscribersOf(s, 2) == (std::vector<uint64_t>{200}));
  s.removeAll(b, 200);
  CHECK_EQ(s.channels(), size_t(0));
}
