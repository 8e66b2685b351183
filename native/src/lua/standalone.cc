#include "lua/standalone.h"

#include <algorithm>
#include <cstring>

namespace lapps {

namespace {

constexpr uint64_t kTaskTag = 1;  // the inbox; watched sockets are the Loop's

}  // namespace

StandaloneRunner::StandaloneRunner(std::unique_ptr<LuaInstance> instance)
    : instance_(std::move(instance)) {
  instance_->setHost(this);
  tick();
  add(tasks_.fd(), EPOLLIN, kTaskTag);
}

StandaloneRunner::~StandaloneRunner() {
  stop(monotonicMs());
  join();
  // Lua state first (the Loop closes its epoll fd after): its clients unwatch their
  // sockets from this loop.
  instance_.reset();
}

bool StandaloneRunner::start() {
  const int e = Loop::createError() ? Loop::createError() : tasks_.createError();
  if (e) {
    instance_->log(LogLevel::Error,
                   std::string("cannot create its event loop: ") + std::strerror(e));
    return false;
  }
  started_.store(true, std::memory_order_relaxed);
  thread_.start("lapps-service", [this] { run(); });
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

void StandaloneRunner::post(std::function<void()> fn) {
  tasks_.push(std::move(fn));
}

void StandaloneRunner::run() {
  tick();
  bool ok = instance_->runInit();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    initState_ = ok ? 1 : 2;
  }
  initDone_.notify_all();
  if (!ok) return;
  instance_->startRun();
  while (!instance_->runFinished()) {
    uint64_t next = UINT64_MAX;
    const uint64_t stopAt = stopDeadline_.load(std::memory_order_relaxed);
    if (stopAt) {
      if (nowMs_ >= stopAt) {
        instance_->log(LogLevel::Warn,
                       "run() had not returned when the drain timeout ended: stopped without it");
        break;
      }
      next = stopAt;
    }
    turn(next, [this](uint64_t tag, uint32_t) {
      if (tag != kTaskTag) return;
      std::vector<std::function<void()>> batch;
      tasks_.drain(batch);
      for (auto& fn : batch) fn();
    });
    runTimers();
  }
  instance_->onShutdown();
}

}  // namespace lapps
