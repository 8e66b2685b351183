// The event loop (io/loop.h): owner fds by tag, watched sockets, timers and the clock.
#include <sys/eventfd.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "io/loop.h"
#include "test.h"

using namespace lapps;

namespace {

// A Loop as its owners use it: its own fds under tags, post() left to the owner.
class TestLoop final : public Loop {
 public:
  void post(std::function<void()>) override {}
  void addOwn(int fd, uint64_t tag) { add(fd, EPOLLIN, tag); }
  void removeOwn(int fd) { remove(fd); }
  // One turn; returns the owner events it was handed.
  std::vector<uint64_t> once(uint64_t deadlineMs) {
    std::vector<uint64_t> tags;
    turn(deadlineMs, [&](uint64_t tag, uint32_t) { tags.push_back(tag); });
    runTimers();
    return tags;
  }
};

struct Recorder : IoHandler {
  std::vector<int> fds;
  void onIo(int fd, uint32_t) override { fds.push_back(fd); }
};

}  // namespace

TEST("loop: an owner fd is delivered by its tag; watched sockets go to their handler") {
  TestLoop loop;
  int own = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int p[2];
  REQUIRE(::pipe(p) == 0);
  loop.addOwn(own, 7);
  Recorder r;
  loop.watch(p[0], EPOLLIN, &r);
  // Nothing ready: a turn with a past deadline does not block.
  CHECK(loop.once(0).empty());
  CHECK(r.fds.empty());
  uint64_t one = 1;
  CHECK(::write(own, &one, sizeof one) == 8);
  CHECK(::write(p[1], "x", 1) == 1);
  std::vector<uint64_t> tags = loop.once(0);
  REQUIRE(tags.size() == 1);
  CHECK_EQ(tags[0], uint64_t(7));
  REQUIRE(r.fds.size() == 1);
  CHECK_EQ(r.fds[0], p[0]);
  // Unwatched (and the owner's fd removed): level-triggered readiness is no longer seen.
  loop.unwatch(p[0]);
  loop.removeOwn(own);
  CHECK(loop.once(0).empty());
  CHECK_EQ(r.fds.size(), size_t(1));
  ::close(own);
  ::close(p[0]);
  ::close(p[1]);
}

TEST("loop: timers run in deadline order once due; a cancelled one never runs") {
  TestLoop loop;
  loop.once(0);  // reads the clock (an owner does at the start of its run)
  std::string ran;
  loop.addTimer(20, [&] { ran += "b"; });
  loop.addTimer(0, [&] { ran += "a"; });
  uint64_t c = loop.addTimer(10, [&] { ran += "c"; });
  CHECK(loop.cancelTimer(c));
  CHECK(!loop.cancelTimer(c));
  const uint64_t start = loop.nowMs();
  // Each turn blocks until the next timer is due at most (the heap bounds the wait).
  while (ran.size() < 2 && loop.nowMs() - start < 5000) loop.once(UINT64_MAX);
  CHECK_EQ(ran, std::string("ab"));
  CHECK(loop.nowMs() - start >= 20);
}

TEST("loop: the clock is read once per turn") {
  TestLoop loop;
  loop.once(0);
  const uint64_t before = loop.nowMs();
  ::usleep(30000);
  CHECK_EQ(loop.nowMs(), before);  // not read between turns
  loop.once(0);
  CHECK(loop.nowMs() >= before + 20);
  CHECK(loop.nowMs() <= monotonicMs());
}
