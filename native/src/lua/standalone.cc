#include "lua/standalone.h"

#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

namespace lapps {

namespace {

constexpr uint64_t kTaskTag = ~uint64_t(0);

uint64_t monotonicMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

}  // namespace

StandaloneRunner::StandaloneRunner(std::unique_ptr<LuaInstance> instance)
    : instance_(std::move(instance)), epfd_(::epoll_create1(EPOLL_CLOEXEC)) {
  instance_->setHost(this);
  nowMs_ = monotonicMs();
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kTaskTag;
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, tasks_.fd(), &ev);
}

StandaloneRunner::~StandaloneRunner() {
  stop(monotonicMs());
  join();
  // Lua state first: its clients unwatch their sockets from this loop.
  instance_.reset();
  if (epfd_ >= 0) ::close(epfd_);
}

bool StandaloneRunner::start() {
  started_.store(true, std::memory_order_relaxed);
  thread_.start([this] { run(); });
  std::unique_lock<std::mutex> lock(mutex_);
  initDone_.wait(lock, [this] { return initState_ != 0; });
  return initState_ == 1;
}

void StandaloneRunner::stop(uint64_t deadlineMs) {
  // Not thread_.joinable(): another thread (the server's stopper) may be joining it.
  if (!started_.load(std::memory_order_relaxed)) return;
  uint64_t cur = stopDeadline_.load(std::memory_order_relaxed);
  while ((cur == 0 || deadlineMs < cur) &&
         !stopDeadline_.compare_exchange_weak(cur, deadlineMs, std::memory_order_relaxed)) {
  }
  instance_->markStop(deadlineMs);
  post([this] { instance_->requestStop(); });
}

void StandaloneRunner::join() {
  if (thread_.joinable()) thread_.join();
}

uint64_t StandaloneRunner::addTimer(uint64_t delayMs, std::function<void()> fn) {
  return timers_.add(nowMs_ + delayMs, std::move(fn));
}

void StandaloneRunner::post(std::function<void()> fn) {
  tasks_.push(std::move(fn));
}

void StandaloneRunner::watch(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = uint64_t(fd);
  bool known = io_.contains(fd);
  io_[fd] = handler;
  ::epoll_ctl(epfd_, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
}

void StandaloneRunner::unwatch(int fd) {
  if (io_.erase(fd)) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

void StandaloneRunner::loopOnce(int timeoutMs) {
  epoll_event events[64];
  int n = ::epoll_wait(epfd_, events, 64, timeoutMs);
  nowMs_ = monotonicMs();
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u64 == kTaskTag) {
      std::vector<std::function<void()>> batch;
      tasks_.drain(batch);
      for (auto& fn : batch) fn();
    } else {
      auto it = io_.find(int(events[i].data.u64));
      if (it != io_.end()) it->second->onIo(it->first, events[i].events);
    }
  }
  timers_.runDue(nowMs_);
}

void StandaloneRunner::run() {
  nowMs_ = monotonicMs();
  bool ok = instance_->runInit();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    initState_ = ok ? 1 : 2;
  }
  initDone_.notify_all();
  if (!ok) return;
  instance_->startRun();
  while (!instance_->runFinished()) {
    uint64_t next = timers_.next();
    const uint64_t stopAt = stopDeadline_.load(std::memory_order_relaxed);
    if (stopAt) {
      if (nowMs_ >= stopAt) {
        instance_->log(LogLevel::Warn,
                       "run() had not returned when the drain timeout ended: stopped without it");
        break;
      }
      next = std::min(next, stopAt);
    }
    int timeout = -1;
    if (next != UINT64_MAX) {
      timeout = next <= nowMs_ ? 0 : int(std::min<uint64_t>(next - nowMs_, 60000));
    }
    loopOnce(timeout);
  }
  instance_->onShutdown();
}

}  // namespace lapps
