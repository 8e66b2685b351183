// The one event loop of a thread: an epoll instance, the clock as of the current turn,
// the Host's timer heap and the sockets watched for outbound clients. An IO worker
// (core/worker.h) and a standalone service (lua/standalone.h) are each a Loop: they
// add their own fds under tags of their choosing, provide post(), and drive the turns.
// Nothing else owns an epoll fd.
#pragma once

#include <sys/epoll.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <unordered_map>

#include "io/clock.h"
#include "io/host.h"
#include "io/timer-queue.h"

namespace lapps {

class Loop : public Host {
 public:
  // Tags of watched sockets: kWatchTagBase + fd. The owner's own tags stay below it.
  static constexpr uint64_t kWatchTagBase = uint64_t(1) << 62;

  Loop();
  ~Loop() override;
  // The errno of a loop that could not be created (no descriptor left), else 0: its
  // owner must not run (checked at start, where the failure becomes a clear error).
  int createError() const { return createError_; }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Host, except post(): how a task reaches the loop's thread is the owner's inbox.
  uint64_t nowMs() const final { return nowMs_; }
  uint64_t addTimer(uint64_t delayMs, std::function<void()> fn) final {
    return timers_.add(nowMs_ + delayMs, std::move(fn));
  }
  bool cancelTimer(uint64_t id) final { return timers_.cancel(id); }
  void watch(int fd, uint32_t events, IoHandler* handler) final;
  void unwatch(int fd) final;

 protected:
  // The owner's fds, delivered to its onEvent with `tag` (below kWatchTagBase).
  void add(int fd, uint32_t events, uint64_t tag) { ctl(EPOLL_CTL_ADD, fd, events, tag); }
  void modify(int fd, uint32_t events, uint64_t tag) { ctl(EPOLL_CTL_MOD, fd, events, tag); }
  void remove(int fd) { ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

  // Reads the clock (at the start of a run, before the first turn).
  void tick() { nowMs_ = monotonicMs(); }

  // One turn: waits for events until the earliest of `deadlineMs` (UINT64_MAX: none) and
  // the timers' next deadline (at most a minute), reads the clock, then hands each event
  // out: watched sockets to their IoHandler, the owner's to onEvent(tag, events), inline
  // (a template: the owner's dispatch costs no indirect call). Timers are not run here:
  // the owner runs them (runTimers) where they belong in its turn. Returns the number of
  // events. Always inlined: the owner's loop stays one function, as if written out in it.
  template <class OnEvent>
  __attribute__((always_inline)) int turn(uint64_t deadlineMs, OnEvent&& onEvent) {
    const uint64_t d = std::min(deadlineMs, timers_.next());
    int timeout = -1;
    if (d != UINT64_MAX) timeout = d <= nowMs_ ? 0 : int(std::min<uint64_t>(d - nowMs_, 60000));
    epoll_event events[kMaxEvents];
    int n = ::epoll_wait(epfd_, events, kMaxEvents, timeout);
    nowMs_ = monotonicMs();
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag >= kWatchTagBase) {
        onWatched(tag, events[i].events);
      } else {
        onEvent(tag, events[i].events);
      }
    }
    return n;
  }
  // Runs the Host timers that are due.
  void runTimers() { timers_.runDue(nowMs_); }

  uint64_t nowMs_ = 0;

 private:
  static constexpr int kMaxEvents = 256;

  void ctl(int op, int fd, uint32_t events, uint64_t tag) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    ::epoll_ctl(epfd_, op, fd, &ev);
  }
  void onWatched(uint64_t tag, uint32_t events);

  int epfd_ = -1;
  int createError_ = 0;
  TimerQueue timers_;
  std::unordered_map<int, IoHandler*> watched_;  // by fd
};

}  // namespace lapps
