// The loop a service instance lives on: an IO worker (reactive services) or a standalone
// service's own thread. Lua coroutines suspend on it (timers, sockets, queues) and are
// resumed by it; nothing here ever blocks the loop.
#pragma once

#include <cstdint>
#include <functional>

#include "io/io-host.h"

namespace lapps {

class Host : public IoHost {
 public:
  // Milliseconds on the monotonic clock, as of the current loop turn.
  virtual uint64_t nowMs() const = 0;
  // Runs fn on this host's thread once delayMs have passed; the id is never 0.
  virtual uint64_t addTimer(uint64_t delayMs, std::function<void()> fn) = 0;
  // True if the timer was still pending (it will not run).
  virtual bool cancelTimer(uint64_t id) = 0;
  // Any thread: runs fn on this host's thread soon. Dropped (not run) once the host has
  // stopped.
  virtual void post(std::function<void()> fn) = 0;
};

}  // namespace lapps
