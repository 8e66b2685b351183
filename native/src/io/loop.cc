#include "io/loop.h"

#include <unistd.h>

#include <cerrno>

namespace lapps {

Loop::Loop() : epfd_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (epfd_ < 0) createError_ = errno;
}

Loop::~Loop() {
  if (epfd_ >= 0) ::close(epfd_);
}

void Loop::watch(int fd, uint32_t events, IoHandler* handler) {
  const bool known = watched_.contains(fd);
  watched_[fd] = handler;
  ctl(known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, events, kWatchTagBase + uint64_t(fd));
}

void Loop::unwatch(int fd) {
  if (watched_.erase(fd)) remove(fd);
}

void Loop::onWatched(uint64_t tag, uint32_t events) {
  auto it = watched_.find(int(tag - kWatchTagBase));
  if (it != watched_.end()) it->second->onIo(it->first, events);
}

}  // namespace lapps
