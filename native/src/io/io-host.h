// What an outbound client needs of the loop that drives it: a worker (reactive services)
// or a standalone service's thread. Both are epoll loops; the client never blocks.
#pragma once

#include <cstdint>

namespace lapps {

class IoHandler {
 public:
  virtual ~IoHandler() = default;
  // `events` are epoll bits (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP).
  virtual void onIo(int fd, uint32_t events) = 0;
};

class IoHost {
 public:
  virtual ~IoHost() = default;
  // Starts or changes watching fd for `events` (level-triggered), delivering to `handler`
  // on the host's thread.
  virtual void watch(int fd, uint32_t events, IoHandler* handler) = 0;
  // Stops watching fd (before it is closed).
  virtual void unwatch(int fd) = 0;
};

}  // namespace lapps
