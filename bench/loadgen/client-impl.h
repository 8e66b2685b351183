// Member definitions of Client<Mode, Transport> (client.h). Include client.h, not this file.
#pragma once

#include "client.h"

namespace loadgen {

template <class Mode, class Transport>
bool Client<Mode, Transport>::run() {
  if (!io_.init(o_)) return false;
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) {
    std::perror("lapps-loadgen: epoll_create1");
    return false;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  signalFd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kSignalTag;
  if (signalFd_ < 0 || epoll_ctl(ep_, EPOLL_CTL_ADD, signalFd_, &ev) < 0) {
    std::perror("lapps-loadgen: signalfd");
    return false;
  }
  if (Mode::kWatchStdin) {
    // A pipe or tty is watched; /dev/null or a regular file cannot be (EPERM): then only
    // --hold and signals end the hold.
    ev.data.u64 = kStdinTag;
    epoll_ctl(ep_, EPOLL_CTL_ADD, STDIN_FILENO, &ev);
  }
  if constexpr (requires { mode_.wakeFd(); }) {
    ev.data.u64 = kWakeTag;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, mode_.wakeFd(), &ev) < 0) {
      std::perror("lapps-loadgen: eventfd");
      return false;
    }
  }

  startNs_ = nowNs();
  nextScanNs_ = startNs_ + kScanNs;
  uint64_t now = startNs_;
  epoll_event events[kMaxEvents];
  for (;;) {
    while (inFlight_ < o_.concurrency && next_ < conns_.size()) startConnect(conns_[next_++]);
    if (!attempted_ && next_ == conns_.size() && inFlight_ == 0) {
      attempted_ = true;
      mode_.onAllAttempted(*this, nowNs());
    }
    if constexpr (requires { mode_.onTick(*this, now); }) mode_.onTick(*this, now);
    if (stop_ || mode_.done(*this, now)) break;
    int n = epoll_wait(ep_, events, kMaxEvents, timeoutMs(now));
    if (n < 0 && errno != EINTR) {
      std::perror("lapps-loadgen: epoll_wait");
      return false;
    }
    for (int i = 0; i < n; ++i) dispatch(events[i]);
    now = nowNs();
    if (inFlight_ > 0 && now >= nextScanNs_) scanTimeouts(now);
  }
  return true;
}

template <class Mode, class Transport>
int Client<Mode, Transport>::timeoutMs(uint64_t now) const {
  uint64_t wake = mode_.deadline();
  if (inFlight_ > 0 && nextScanNs_ < wake) wake = nextScanNs_;
  if (wake == ~uint64_t(0)) return -1;
  if (wake <= now) return 0;
  uint64_t ms = (wake - now + 999'999) / 1'000'000;
  return ms > 3'600'000 ? 3'600'000 : int(ms);
}

template <class Mode, class Transport>
void Client<Mode, Transport>::startConnect(Conn& c) {
  c.state = ConnState::kConnecting;
  c.startedNs = nowNs();
  ++inFlight_;
  c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) return fail(c, ErrorKind::kConnect);
  int one = 1;
  // TLS always, as TLS clients do: the client's Finished and the upgrade request are two
  // small writes in a row, and Nagle holds the second until the first is acknowledged.
  if (Mode::kNoDelay || Transport::kTls) {
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (!o_.sources.empty()) {
    // Without IP_BIND_ADDRESS_NO_PORT, bind() picks the port before the destination is
    // known, so ports could not be shared between destinations.
    setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr = o_.sources[c.index % o_.sources.size()];
    if (::bind(c.fd, reinterpret_cast<sockaddr*>(&local), sizeof local) < 0) {
      return fail(c, ErrorKind::kConnect);
    }
  }
  if (!mode_.raw()) HandshakeRequest::makeKey(rng_, c.key);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = c.index;
  if (epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) < 0) return fail(c, ErrorKind::kConnect);
  if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&o_.server), sizeof o_.server) == 0) {
    established(c);
  } else if (errno != EINPROGRESS) {
    fail(c, ErrorKind::kConnect);
  }
}

template <class Mode, class Transport>
void Client<Mode, Transport>::established(Conn& c) {
  if (mode_.raw()) return open(c, nowNs());
  if constexpr (Transport::kTls) {
    c.state = ConnState::kTlsHandshaking;
    return tlsHandshake(c);
  }
  sendUpgrade(c);
}

template <class Mode, class Transport>
void Client<Mode, Transport>::tlsHandshake(Conn& c) {
  int r = io_.handshake(c);
  if (r > 0) return sendUpgrade(c);
  if (r < 0) fail(c, ErrorKind::kTls);
  // r == 0: the next readiness edge, either direction, continues it.
}

template <class Mode, class Transport>
void Client<Mode, Transport>::sendUpgrade(Conn& c) {
  c.state = ConnState::kHandshaking;
  iovec iov[3];
  request_.iov(c.key, iov);
  send(c, iov, 3);
}

template <class Mode, class Transport>
void Client<Mode, Transport>::open(Conn& c, uint64_t now) {
  c.state = ConnState::kOpen;
  --inFlight_;
  ++open_;
  mode_.onOpen(*this, c, now);
}

template <class Mode, class Transport>
void Client<Mode, Transport>::release(Conn& c) {
  io_.release(c);
  if (c.fd >= 0) ::close(c.fd);  // also removes it from the epoll set
  c.fd = -1;
  if (c.inFlight()) --inFlight_;
  if (c.state == ConnState::kOpen) --open_;
  c.state = ConnState::kDone;
  c.partial.reset();
  std::vector<uint8_t>().swap(c.pending.bytes);
  c.pending.sent = 0;
}

template <class Mode, class Transport>
void Client<Mode, Transport>::fail(Conn& c, ErrorKind k) {
  bool wasOpen = c.state == ConnState::kOpen;
  release(c);
  countError(k);
  if (wasOpen) mode_.onLost(c);
}

template <class Mode, class Transport>
void Client<Mode, Transport>::close(Conn& c, bool rst) {
  if (rst && c.fd >= 0) {
    linger l{1, 0};
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  release(c);
}

template <class Mode, class Transport>
void Client<Mode, Transport>::dispatch(const epoll_event& ev) {
  if (ev.data.u64 == kSignalTag) {
    stop_ = true;
    return;
  }
  if (ev.data.u64 == kStdinTag) {
    char sink[4096];
    ssize_t n = ::read(STDIN_FILENO, sink, sizeof sink);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      stop_ = true;
      epoll_ctl(ep_, EPOLL_CTL_DEL, STDIN_FILENO, nullptr);
    }
    return;
  }
  if constexpr (requires { mode_.wakeFd(); }) {
    if (ev.data.u64 == kWakeTag) {
      uint64_t v;
      while (::read(mode_.wakeFd(), &v, sizeof v) > 0) {
      }
      return;
    }
  }
  Conn& c = conns_[ev.data.u64];
  if (c.state == ConnState::kConnecting) {
    // A failed non-blocking connect reports EPOLLERR (SO_ERROR would say why; the
    // count is all we need, and it saves a syscall per connection).
    if (ev.events & (EPOLLERR | EPOLLHUP)) return fail(c, ErrorKind::kConnect);
    if (!(ev.events & EPOLLOUT)) return;
    established(c);
    // TLS: the ClientHello is out, nothing can have come back yet.
    if constexpr (Transport::kTls) return;
  }
  constexpr uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
  if constexpr (Transport::kTls) {
    // The TLS handshake goes on whichever way the socket became ready. Once it is done
    // the WebSocket request is out; its 101 will raise an edge of its own.
    if (c.state == ConnState::kTlsHandshaking) return tlsHandshake(c);
    // An SSL_write may wait for a read (and an SSL_read for a write): retry both.
    if (!c.pending.empty() && !flush(c)) return;
    if (((ev.events & kReadEvents) || ((ev.events & EPOLLOUT) && io_.readWantsWrite(c))) &&
        (c.state == ConnState::kHandshaking || c.state == ConnState::kOpen)) {
      onReadable(c);
    }
    return;
  }
  if ((ev.events & EPOLLOUT) && !c.pending.empty() && !flush(c)) return;
  if ((ev.events & kReadEvents) &&
      (c.state == ConnState::kHandshaking || c.state == ConnState::kOpen)) {
    onReadable(c);
  }
}

template <class Mode, class Transport>
void Client<Mode, Transport>::onReadable(Conn& c) {
  uint64_t now = 0;
  for (;;) {
    ssize_t n = io_.read(c, readBuf_.get(), kReadSize);
    if (n > 0) {
      now = nowNs();
      if (!consume(c, readBuf_.get(), size_t(n), now)) return;
      // Drained (plain: a short read): with EPOLLET, later data raises a new edge.
      if (io_.drained(c, size_t(n), kReadSize)) break;
      continue;
    }
    if (n == 0) return fail(c, ErrorKind::kEof);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) break;
    return fail(c, ErrorKind::kIo);
  }
  if (now != 0 && c.state == ConnState::kOpen) mode_.afterRead(*this, c, now);
}

template <class Mode, class Transport>
bool Client<Mode, Transport>::consume(Conn& c, const uint8_t* p, size_t n, uint64_t now) {
  if (c.state == ConnState::kHandshaking) {
    const char* data = reinterpret_cast<const char*>(p);
    size_t len = n;
    if (c.partial) {
      c.partial->append(data, n);
      data = c.partial->data();
      len = c.partial->size();
    }
    size_t headerLen = 0;
    switch (checkResponse(data, len, c.key, &headerLen)) {
      case ResponseStatus::kIncomplete:
        if (!c.partial) c.partial = std::make_unique<std::string>(data, len);
        return true;
      case ResponseStatus::kFailed:
        fail(c, ErrorKind::kHandshake);
        return false;
      case ResponseStatus::kOk:
        break;
    }
    size_t rest = len - headerLen;  // frame bytes after the blank line, all from this read
    c.partial.reset();
    open(c, now);
    if (c.state != ConnState::kOpen) return false;
    p += n - rest;
    n = rest;
    if (n == 0) return true;
  }
  bool rawBytes = mode_.raw();
  if constexpr (requires { Mode::kRawFrames; }) rawBytes = rawBytes && !Mode::kRawFrames;
  if (rawBytes) {
    mode_.onBytes(*this, c, n, now);
  } else {
    Sink sink{this, &c, now};
    c.reader.feed(p, p + n, sink);
  }
  return c.state != ConnState::kDone;
}

template <class Mode, class Transport>
bool Client<Mode, Transport>::send(Conn& c, const iovec* iov, int n) {
  if (c.state == ConnState::kDone) return false;
  if (!c.pending.empty()) {
    for (int i = 0; i < n; ++i) c.pending.append(iov[i].iov_base, iov[i].iov_len);
    return flush(c);
  }
  ssize_t w;
  do {
    w = io_.writev(c, iov, n);
  } while (w < 0 && errno == EINTR);
  if (w < 0) {
    if (errno != EAGAIN) {
      fail(c, ErrorKind::kIo);
      return false;
    }
    w = 0;
  }
  size_t skip = size_t(w);
  for (int i = 0; i < n; ++i) {
    if (skip >= iov[i].iov_len) {
      skip -= iov[i].iov_len;
      continue;
    }
    c.pending.append(static_cast<const uint8_t*>(iov[i].iov_base) + skip, iov[i].iov_len - skip);
    skip = 0;
  }
  return true;
}

template <class Mode, class Transport>
bool Client<Mode, Transport>::flush(Conn& c) {
  PendingBytes& q = c.pending;
  while (!q.empty()) {
    ssize_t w = io_.write(c, q.bytes.data() + q.sent, q.bytes.size() - q.sent);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      fail(c, ErrorKind::kIo);
      return false;
    }
    q.sent += size_t(w);
  }
  q.clear();
  return true;
}

template <class Mode, class Transport>
void Client<Mode, Transport>::pong(Conn& c, const uint8_t* p, size_t n) {
  uint8_t frame[14 + 125];
  size_t h = writeClientHeader(frame, 0x0A, n, uint32_t(rng_.next() >> 32));
  const uint8_t* mask = frame + h - 4;
  for (size_t i = 0; i < n; ++i) frame[h + i] = p[i] ^ mask[i & 3];
  iovec iov{frame, h + n};
  ++pongs_;
  send(c, &iov, 1);
}

template <class Mode, class Transport>
void Client<Mode, Transport>::scanTimeouts(uint64_t now) {
  nextScanNs_ = now + kScanNs;
  uint64_t limit = secondsToNs(o_.timeout);
  while (low_ < next_ && !conns_[low_].inFlight()) ++low_;
  for (uint32_t i = low_; i < next_; ++i) {
    Conn& c = conns_[i];
    if (c.inFlight() && now - c.startedNs > limit) fail(c, ErrorKind::kTimeout);
  }
}

template <class Mode, class Transport>
uint64_t Client<Mode, Transport>::errors() const {
  uint64_t sum = 0;
  for (uint64_t e : errors_) sum += e;
  return sum;
}

template <class Mode, class Transport>
void Client<Mode, Transport>::printErrorDetail(FILE* out) const {
  std::fputs("\"error_detail\":{", out);
  for (size_t i = 0; i < size_t(ErrorKind::kCount); ++i) {
    std::fprintf(out, "%s\"%s\":%llu", i ? "," : "", kErrorNames[i],
                 static_cast<unsigned long long>(errors_[i]));
  }
  std::fputc('}', out);
}

}  // namespace loadgen
