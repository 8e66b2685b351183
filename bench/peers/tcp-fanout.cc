// Raw TCP fan-out over epoll, no WebSocket at all: the ceiling for broadcast. One thread,
// level-triggered, non-blocking. Each connection starts with one line that says what it is
// (see README.md, "Fan-out peers"):
//
//   "sub\n"            a subscriber; answered with the bytes of a WebSocket text frame "ok"
//   "pub\n"            the publisher; every byte it sends after the line is written, as
//                      read, to every subscriber (the load generator sends ready-made
//                      server frames, so subscribers parse them as a server's)
//   "go <n> <size>\n"  the built-in publisher: n messages of <size> payload bytes, built as
//                      server frames (sequence number, CLOCK_MONOTONIC ns, filler) into
//                      one buffer and written to every subscriber (the "go" lines of one
//                      read together, as a read of the publisher is forwarded whole)
//   "rate <r> <size>\n" the built-in publisher from now on: r messages per second (a
//                      timerfd), each written to every subscriber when it is due,
//                      until the connection that sent it closes
//
// A subscriber's short write parks the rest (and what follows) on that subscriber until
// EPOLLOUT drains it; the others are not held back. The load generator bounds what is in
// flight, so what is parked stays bounded too.
//
// Usage: tcp-fanout [port]   (port from argv[1], else $PORT, else 0 = any free port)
// Prints "listening <port>" once accepting; exits 0 on SIGTERM / SIGINT.
#include "peer-common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr size_t kReadSize = 256 * 1024;
constexpr int kMaxEvents = 256;
constexpr size_t kMaxLine = 64;

enum class Role { kNew, kSubscriber, kPublisher };

struct Conn {
  explicit Conn(int f) : fd(f) {}
  int fd;
  Role role = Role::kNew;
  bool dead = false;             // dropped; freed after the current epoll batch
  size_t slot = 0;               // index in the subscriber list
  std::string line;              // a command line being read
  std::vector<uint8_t> pending;  // bytes the socket did not take yet, in order
  size_t pendingOff = 0;
};

uint64_t monotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// A server frame (FIN, binary, unmasked) with payload [seq LE, ns LE, 'x'...].
void appendFrame(std::vector<uint8_t>& out, uint64_t seq, uint64_t ns, size_t size) {
  out.push_back(0x82);
  if (size <= 125) {
    out.push_back(uint8_t(size));
  } else if (size <= 0xFFFF) {
    out.push_back(126);
    out.push_back(uint8_t(size >> 8));
    out.push_back(uint8_t(size));
  } else {
    out.push_back(127);
    for (int i = 7; i >= 0; --i) out.push_back(uint8_t(uint64_t(size) >> (8 * i)));
  }
  size_t at = out.size();
  out.resize(at + size, uint8_t('x'));
  for (int i = 0; i < 8; ++i) {
    out[at + i] = uint8_t(seq >> (8 * i));
    out[at + 8 + i] = uint8_t(ns >> (8 * i));
  }
}

class Server {
 public:
  Server(int listenFd, int sigFd) : listenFd_(listenFd), sigFd_(sigFd) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) peer::die("epoll_create1");
    timerFd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timerFd_ < 0) peer::die("timerfd_create");
    add(listenFd_, EPOLLIN, nullptr);
    add(sigFd_, EPOLLIN, &sigFd_);
    add(timerFd_, EPOLLIN, &timerFd_);
    buf_.reset(new uint8_t[kReadSize]);
  }

  ~Server() {
    for (Conn* c : conns_) {
      if (c == nullptr) continue;
      close(c->fd);
      delete c;
    }
    for (Conn* c : dropped_) delete c;
    close(timerFd_);
    close(ep_);
  }

  void run() {
    epoll_event events[kMaxEvents];
    for (;;) {
      const int n = epoll_wait(ep_, events, kMaxEvents, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        peer::die("epoll_wait");
      }
      for (int i = 0; i < n; ++i) {
        void* tag = events[i].data.ptr;
        if (tag == nullptr) {
          acceptAll();
        } else if (tag == &sigFd_) {
          return;
        } else if (tag == &timerFd_) {
          onTimer();
        } else {
          onConn(static_cast<Conn*>(tag), events[i].events);
        }
      }
      // A broadcast may drop a subscriber whose own event is later in this batch: free
      // dropped connections only once the batch is done.
      for (Conn* c : dropped_) delete c;
      dropped_.clear();
    }
  }

 private:
  void add(int fd, uint32_t ev, void* tag) {
    epoll_event e{};
    e.events = ev;
    e.data.ptr = tag;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e) < 0) peer::die("epoll_ctl add");
  }

  void modify(Conn* c, uint32_t ev) {
    epoll_event e{};
    e.events = ev;
    e.data.ptr = c;
    epoll_ctl(ep_, EPOLL_CTL_MOD, c->fd, &e);
  }

  void acceptAll() {
    for (;;) {
      const int fd = accept4(listenFd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) perror("tcp-fanout: accept4");
        return;
      }
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      Conn* c = new Conn(fd);
      if (static_cast<size_t>(fd) >= conns_.size()) conns_.resize(fd + 1, nullptr);
      conns_[fd] = c;
      add(fd, EPOLLIN, c);
    }
  }

  void drop(Conn* c) {
    if (c->dead) return;
    if (c == rateOwner_) {  // the publisher's pace ends with the connection that set it
      itimerspec off{};
      timerfd_settime(timerFd_, 0, &off, nullptr);
      rateOwner_ = nullptr;
    }
    if (c->role == Role::kSubscriber) {
      // Swap-remove from the subscriber list.
      Conn* last = subs_.back();
      subs_[c->slot] = last;
      last->slot = c->slot;
      subs_.pop_back();
    }
    conns_[c->fd] = nullptr;
    close(c->fd);
    c->dead = true;
    dropped_.push_back(c);
  }

  // Writes to one subscriber, after whatever it has parked. False: it is dead.
  bool deliver(Conn* c, const uint8_t* p, size_t n) {
    if (c->pendingOff < c->pending.size()) {
      c->pending.insert(c->pending.end(), p, p + n);
      return true;
    }
    size_t done = 0;
    while (done < n) {
      const ssize_t w = send(c->fd, p + done, n - done, MSG_NOSIGNAL);
      if (w > 0) {
        done += size_t(w);
      } else if (w < 0 && errno == EINTR) {
        continue;
      } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c->pending.assign(p + done, p + n);
        c->pendingOff = 0;
        modify(c, EPOLLIN | EPOLLOUT);
        return true;
      } else {
        return false;
      }
    }
    return true;
  }

  // The same bytes to every subscriber.
  void broadcast(const uint8_t* p, size_t n) {
    for (size_t i = 0; i < subs_.size();) {
      Conn* c = subs_[i];
      if (deliver(c, p, n)) {
        ++i;
      } else {
        drop(c);  // swap-removes: slot i now holds another subscriber
      }
    }
  }

  void flushPending(Conn* c) {
    while (c->pendingOff < c->pending.size()) {
      const ssize_t w = send(c->fd, c->pending.data() + c->pendingOff,
                             c->pending.size() - c->pendingOff, MSG_NOSIGNAL);
      if (w > 0) {
        c->pendingOff += size_t(w);
      } else if (w < 0 && errno == EINTR) {
        continue;
      } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
      } else {
        return drop(c);
      }
    }
    std::vector<uint8_t>().swap(c->pending);
    c->pendingOff = 0;
    modify(c, EPOLLIN);
  }

  // The built-in publisher: n messages, one buffer, written to every subscriber.
  void publish(uint64_t n) {
    frames_.clear();
    const uint64_t ns = monotonicNs();
    for (uint64_t i = 0; i < n; ++i) appendFrame(frames_, ++seq_, ns, size_);
    broadcast(frames_.data(), frames_.size());
  }

  void onTimer() {
    uint64_t expirations = 0;
    if (read(timerFd_, &expirations, sizeof expirations) != sizeof expirations) return;
    for (uint64_t i = 0; i < expirations; ++i) publish(1);
  }

  // A command line from a connection that has no role yet (or a control connection).
  // "go" adds to *credit, published by the caller once the read's lines are all taken.
  bool command(Conn* c, const std::string& line, uint64_t* credit) {
    uint64_t a = 0, b = 0;
    if (line == "sub") {
      c->role = Role::kSubscriber;
      c->slot = subs_.size();
      subs_.push_back(c);
      static const uint8_t kOk[] = {0x81, 0x02, 'o', 'k'};
      return deliver(c, kOk, sizeof kOk);
    }
    if (line == "pub") {
      c->role = Role::kPublisher;
      return true;
    }
    if (std::sscanf(line.c_str(), "go %" SCNu64 " %" SCNu64, &a, &b) == 2 && b >= 16) {
      size_ = size_t(b);
      *credit += a;
      return true;
    }
    if (std::sscanf(line.c_str(), "rate %" SCNu64 " %" SCNu64, &a, &b) == 2 && a > 0 && b >= 16) {
      size_ = size_t(b);
      itimerspec t{};
      t.it_interval.tv_sec = time_t(1000000000 / a / 1000000000);
      t.it_interval.tv_nsec = long(1000000000 / a % 1000000000);
      t.it_value = t.it_interval;
      timerfd_settime(timerFd_, 0, &t, nullptr);
      rateOwner_ = c;
      return true;
    }
    std::fprintf(stderr, "tcp-fanout: unknown command '%s'\n", line.c_str());
    return false;
  }

  void onConn(Conn* c, uint32_t events) {
    if (c->dead) return;
    if (events & (EPOLLERR | EPOLLHUP)) return drop(c);
    if ((events & EPOLLOUT) && c->pendingOff < c->pending.size()) {
      flushPending(c);
      if (c->dead) return;
    }
    if (!(events & EPOLLIN)) return;
    const ssize_t r = recv(c->fd, buf_.get(), kReadSize, 0);
    if (r == 0) return drop(c);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      return drop(c);
    }
    const uint8_t* p = buf_.get();
    size_t n = size_t(r);
    if (c->role == Role::kPublisher) return broadcast(p, n);
    if (c->role == Role::kSubscriber) return;  // subscribers have nothing more to say
    // Command lines, until a role that takes the rest of the bytes ("pub").
    uint64_t credit = 0;
    while (n > 0 && c->role != Role::kPublisher) {
      const uint8_t* nl = static_cast<const uint8_t*>(std::memchr(p, '\n', n));
      size_t take = nl ? size_t(nl - p) : n;
      c->line.append(reinterpret_cast<const char*>(p), take);
      if (c->line.size() > kMaxLine) return drop(c);
      if (!nl) {
        n = 0;  // the partial line waits in c->line
        break;
      }
      p += take + 1;
      n -= take + 1;
      std::string line;
      line.swap(c->line);
      if (!command(c, line, &credit)) return drop(c);
      if (c->role == Role::kSubscriber) return;
    }
    // Every "go" credit of this read in one buffer: one write per subscriber, as a
    // publisher read carrying several messages is forwarded.
    if (credit > 0) publish(credit);
    if (n > 0) broadcast(p, n);
  }

  int ep_;
  int listenFd_;
  int sigFd_;
  int timerFd_;
  std::unique_ptr<uint8_t[]> buf_;
  std::vector<Conn*> conns_;    // indexed by fd
  std::vector<Conn*> subs_;     // subscribers, in no particular order
  std::vector<Conn*> dropped_;  // to free after the current epoll batch
  std::vector<uint8_t> frames_;
  uint64_t seq_ = 0;
  size_t size_ = 32;
  Conn* rateOwner_ = nullptr;  // the connection whose "rate" runs the timer
};

}  // namespace

int main(int argc, char** argv) {
  const int port = peer::parsePort(argc, argv);
  peer::raiseFdLimit();
  const int sigFd = peer::termSignalFd();
  uint16_t bound = 0;
  const int lfd = peer::listenLoopback(port, &bound);
  {
    Server server(lfd, sigFd);
    std::printf("listening %u\n", bound);
    std::fflush(stdout);
    server.run();
  }
  close(lfd);
  close(sigFd);
  return 0;
}
