// A worker's MPSC inbox: producers push under a mutex and wake the worker through an
// eventfd only when the queue was empty; the worker swaps the whole batch out at once.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <mutex>
#include <vector>

namespace lapps {

template <class Message>
class Inbox {
 public:
  Inbox() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) createError_ = errno;
  }
  ~Inbox() {
    if (fd_ >= 0) ::close(fd_);
  }
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  int fd() const { return fd_; }
  // The errno of an eventfd that could not be made, else 0 (see Loop::createError).
  int createError() const { return createError_; }

  void push(Message m) {
    bool wasEmpty;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      wasEmpty = queue_.empty();
      queue_.push_back(std::move(m));
    }
    if (wasEmpty) {
      uint64_t one = 1;
      // EAGAIN only when the counter would overflow: the worker is awake anyway.
      [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof one);
    }
  }

  // Any thread: something waits (a look, without clearing the wakeup).
  bool pending() {
    std::lock_guard<std::mutex> lock(mutex_);
    return !queue_.empty();
  }

  // Worker thread: clears the wakeup and takes the batch (`out` must be empty).
  void drain(std::vector<Message>& out) {
    uint64_t v;
    [[maybe_unused]] ssize_t n = ::read(fd_, &v, sizeof v);
    std::lock_guard<std::mutex> lock(mutex_);
    out.swap(queue_);
  }

 private:
  int fd_;
  int createError_ = 0;
  std::mutex mutex_;
  std::vector<Message> queue_;
};

}  // namespace lapps
