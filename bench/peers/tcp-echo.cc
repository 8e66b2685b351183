// Raw TCP echo over epoll, no WebSocket framing: the ceiling no WebSocket server can pass.
// One thread, level-triggered, non-blocking. Whatever a read returns is written straight
// back; a short write parks the rest on the connection and stops reading it until drained,
// so a slow client costs memory bounded by one read, never a stall of the loop.
//
// Usage: tcp-echo [port]   (port from argv[1], else $PORT, else 0 = any free port)
// Prints "listening <port>" once accepting; exits 0 on SIGTERM / SIGINT.
#include "peer-common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace {

constexpr size_t kReadSize = 256 * 1024;
constexpr int kMaxEvents = 256;

struct Conn {
  explicit Conn(int f) : fd(f) {}
  int fd;
  std::unique_ptr<uint8_t[]> pending;  // unsent tail of the last read, if any
  size_t pendingLen = 0;
  size_t pendingOff = 0;
};

class Server {
 public:
  Server(int listenFd, int sigFd) : listenFd_(listenFd), sigFd_(sigFd) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) peer::die("epoll_create1");
    add(listenFd_, EPOLLIN, nullptr);
    add(sigFd_, EPOLLIN, &sigFd_);
    buf_.reset(new uint8_t[kReadSize]);
  }

  ~Server() {
    for (Conn* c : conns_) {
      if (c == nullptr) continue;
      close(c->fd);
      delete c;
    }
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
        } else {
          onConn(static_cast<Conn*>(tag), events[i].events);
        }
      }
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
        if (errno != EAGAIN && errno != EWOULDBLOCK) perror("tcp-echo: accept4");
        return;  // EMFILE etc.: retried on the next readiness
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
    conns_[c->fd] = nullptr;
    close(c->fd);  // also removes it from the epoll set
    delete c;
  }

  // Writes p[0, n); returns the bytes written, or -1 when the connection is dead.
  static ssize_t writeSome(int fd, const uint8_t* p, size_t n) {
    size_t done = 0;
    while (done < n) {
      const ssize_t w = send(fd, p + done, n - done, MSG_NOSIGNAL);
      if (w > 0) {
        done += static_cast<size_t>(w);
      } else if (w < 0 && errno == EINTR) {
        continue;
      } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        break;
      } else {
        return -1;
      }
    }
    return static_cast<ssize_t>(done);
  }

  void onConn(Conn* c, uint32_t events) {
    if (events & (EPOLLERR | EPOLLHUP)) return drop(c);
    if (c->pendingLen != 0) {
      if (!(events & EPOLLOUT)) return;
      const ssize_t w =
          writeSome(c->fd, c->pending.get() + c->pendingOff, c->pendingLen - c->pendingOff);
      if (w < 0) return drop(c);
      c->pendingOff += static_cast<size_t>(w);
      if (c->pendingOff < c->pendingLen) return;
      c->pending.reset();
      c->pendingLen = c->pendingOff = 0;
      modify(c, EPOLLIN);
      return;  // level-triggered: pending input is reported again
    }
    const ssize_t r = recv(c->fd, buf_.get(), kReadSize, 0);
    if (r == 0) return drop(c);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      return drop(c);
    }
    const size_t n = static_cast<size_t>(r);
    const ssize_t w = writeSome(c->fd, buf_.get(), n);
    if (w < 0) return drop(c);
    if (static_cast<size_t>(w) == n) return;
    // Short write: keep the rest and wait for EPOLLOUT; stop reading meanwhile.
    c->pendingLen = n - static_cast<size_t>(w);
    c->pendingOff = 0;
    c->pending.reset(new uint8_t[c->pendingLen]);
    std::memcpy(c->pending.get(), buf_.get() + w, c->pendingLen);
    modify(c, EPOLLOUT);
  }

  int ep_;
  int listenFd_;
  int sigFd_;
  std::unique_ptr<uint8_t[]> buf_;
  std::vector<Conn*> conns_;  // indexed by fd
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
