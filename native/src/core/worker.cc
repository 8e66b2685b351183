// The worker loop: accept, inbox, timers, and the service-facing API. Per-connection
// protocol handling is in connection.cc.
#include "core/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/server.h"
#include "protocol/handshake-response.h"
#include "protocol/utf8-validator.h"
#include "security/conn-limiter.h"

namespace lapps {

namespace {

// Epoll tags below Handle::kMinLive name the worker's own fds; connection handles are
// larger because their generation is never 0.
constexpr uint64_t kInboxTag = 1;
constexpr uint64_t kListenerTagBase = 16;
// Sockets of outbound clients (lapps.websocket, lapps.tcp, cws): above every handle.
constexpr uint64_t kIoTagBase = uint64_t(1) << 62;
static_assert(Handle::kMax < kIoTagBase);

constexpr size_t kReadBufferSize = 256 * 1024;
constexpr int kMaxEvents = 256;
constexpr int kAcceptBurst = 64;
constexpr uint64_t kAcceptPauseMs = 100;

uint64_t monotonicMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

}  // namespace

Worker::Worker(Server& server, uint32_t index)
    : server_(server),
      index_(index),
      name_("worker " + std::to_string(index)),
      epfd_(::epoll_create1(EPOLL_CLOEXEC)),
      readBuf_(kReadBufferSize),
      stats_(server.stats(index)) {}

Worker::~Worker() {
  join();
  for (int fd : listeners_) ::close(fd);
  for (Connection* c : slots_) {
    if (c) {
      if (c->fd >= 0) ::close(c->fd);
      delete c;
    }
  }
  if (epfd_ >= 0) ::close(epfd_);
}

EventChannel& Worker::events() {
  return server_.events();
}

void Worker::log(LogLevel level, std::string message) {
  server_.events().log(level, name_, std::move(message));
}

void Worker::start() {
  thread_.start([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run() {
  nowMs_ = monotonicMs();
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kInboxTag;
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, inbox_.fd(), &ev);
  for (size_t i = 0; i < listeners_.size(); ++i) {
    ev.events = EPOLLIN;
    ev.data.u64 = kListenerTagBase + i;
    ::epoll_ctl(epfd_, EPOLL_CTL_ADD, listeners_[i], &ev);
  }
  for (ServiceInstance* inst : instances_) inst->onStart();

  epoll_event events[kMaxEvents];
  for (;;) {
    int timeout = -1;
    uint64_t d = hostTimers_.next();
    if (!timers_.empty()) d = std::min(d, timers_.top().deadline);
    if (d != UINT64_MAX) timeout = d <= nowMs_ ? 0 : int(std::min<uint64_t>(d - nowMs_, 60000));
    if (listenersPaused_) {
      uint64_t d = resumeListenersAt_ > nowMs_ ? resumeListenersAt_ - nowMs_ : 0;
      if (timeout < 0 || uint64_t(timeout) > d) timeout = int(d);
    }
    int n = ::epoll_wait(epfd_, events, kMaxEvents, timeout);
    nowMs_ = monotonicMs();
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag >= kIoTagBase) {
        auto it = io_.find(int(tag - kIoTagBase));
        if (it != io_.end()) it->second->onIo(it->first, events[i].events);
      } else if (tag >= Handle::kMinLive) {
        onConnectionEvent(tag, events[i].events);
      } else if (tag == kInboxTag) {
        onInbox();
      } else if (tag >= kListenerTagBase) {
        onListener(size_t(tag - kListenerTagBase));
      }
    }
    if (listenersPaused_ && nowMs_ >= resumeListenersAt_ && !stopping_) {
      listenersPaused_ = false;
      for (size_t i = 0; i < listeners_.size(); ++i) {
        ev.events = EPOLLIN;
        ev.data.u64 = kListenerTagBase + i;
        ::epoll_ctl(epfd_, EPOLL_CTL_ADD, listeners_[i], &ev);
      }
    }
    onTimers();
    hostTimers_.runDue(nowMs_);
    if (!readAgain_.empty()) {
      std::vector<uint64_t> again;
      again.swap(readAgain_);
      for (uint64_t h : again) {
        Connection* c = lookup(h);
        if (c && c->tls && !c->paused && c->state != ConnState::Dead) onTlsReadable(*c);
      }
    }
    // Handlers run during flushes and teardowns may dirty or kill other connections.
    while (!dirtyList_.empty() || !deadList_.empty()) {
      flushDirty();
      reapDead();
    }
    if (stopping_ && liveConnections_ == 0) break;
  }
  for (ServiceInstance* inst : instances_) inst->onShutdown();
}

void Worker::onListener(size_t index) {
  const int fd = listeners_[index];
  const Policy& policy = *policy_;
  static const std::shared_ptr<TlsServerContext> kPlain;
  const std::shared_ptr<TlsServerContext>& tls =
      index < policy.tls.size() ? policy.tls[index] : kPlain;
  ConnLimiter& limiter = server_.limiter();
  for (int k = 0; k < kAcceptBurst; ++k) {
    PeerAddress peer{};
    socklen_t len = sizeof peer;
    int cfd = ::accept4(fd, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      // Out of descriptors or memory: stop accepting for a moment instead of spinning
      // on a listener that stays readable.
      log(LogLevel::Warn, std::string("accept: ") + std::strerror(errno) + "; pausing accepts");
      listenersPaused_ = true;
      resumeListenersAt_ = nowMs_ + kAcceptPauseMs;
      for (int l : listeners_) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, l, nullptr);
      return;
    }
    if (!haveSlot()) {
      // A handle names at most 2^20 connections per worker.
      ::close(cfd);
      continue;
    }
    if (policy.acl && !policy.acl->allows(&peer.sa)) {
      // Refused addresses learn nothing: no response, not even a TLS handshake.
      stats_->add(Counter::AclRefusedAtAccept);
      ::close(cfd);
      continue;
    }
    const bool counted = limiter.active();
    if (counted) {
      switch (limiter.admit(&peer.sa, nowMs_)) {
        case ConnLimiter::Verdict::Ok:
          break;
        case ConnLimiter::Verdict::ServerFull:
          stats_->add(Counter::ConnectionLimit);
          refuseAtAccept(cfd, 503, "server at its connection limit", tls != nullptr);
          continue;
        case ConnLimiter::Verdict::AddressFull:
          stats_->add(Counter::PerIpConnectionLimit);
          refuseAtAccept(cfd, 503, "too many connections from your address", tls != nullptr);
          continue;
        case ConnLimiter::Verdict::AddressRate:
          stats_->add(Counter::PerIpRateLimit);
          refuseAtAccept(cfd, 429, "too many new connections from your address", tls != nullptr);
          continue;
      }
    }
    int one = 1;
    ::setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Connection* c = newConnection(cfd, peer);
    c->counted = counted;
    const Settings& s = server_.settings();
    c->hs = std::make_unique<HandshakeData>(s.maxHeaderBytes, s.maxHeaders);
    armTimer(*c, nowMs_ + s.handshakeTimeoutMs);
    if (tls) {
      c->tls = tls->newSession(cfd);
      c->tlsContext = tls;
      if (!c->tls) {
        log(LogLevel::Error, "TLS: cannot create a session (out of memory?)");
        kill(*c, nullptr);
      }
    }
  }
}

void Worker::refuseAtAccept(int fd, int status, std::string_view body, bool tls) {
  if (!tls) {
    std::string response;
    appendHttpError(response, status, body);
    // Best effort: a fresh socket's send buffer is empty, so this does not block or split.
    [[maybe_unused]] ssize_t n =
        ::send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(fd, SHUT_WR);
    // Unread bytes at close() turn the FIN into a reset that may destroy the response
    // before the client reads it: discard what already arrived.
    char scratch[4096];
    while (::recv(fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0) {
    }
  }
  ::close(fd);
}

Connection* Worker::newConnection(int fd, const PeerAddress& peer) {
  uint32_t slot;
  if (!freeSlots_.empty()) {
    slot = freeSlots_.back();
    freeSlots_.pop_back();
  } else {
    slot = uint32_t(slots_.size());
    slots_.push_back(nullptr);
    generations_.push_back(0);
  }
  uint32_t gen = (generations_[slot] + 1) & Handle::kGenerationMask;
  if (gen == 0) gen = 1;
  generations_[slot] = gen;
  auto* c = new Connection();
  c->fd = fd;
  c->slot = slot;
  c->generation = gen;
  c->peer = peer;
  c->lastActivityMs = nowMs_;
  slots_[slot] = c;
  ++liveConnections_;
  stats_->add(Counter::ConnectionsOpen);
  stats_->add(Counter::ConnectionsAccepted);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u64 = handleOf(*c);
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  return c;
}

Connection* Worker::lookup(uint64_t handle) {
  Handle h = Handle::unpack(handle);
  if (h.worker != index_ || h.slot >= slots_.size()) return nullptr;
  Connection* c = slots_[h.slot];
  if (!c || c->generation != h.generation) return nullptr;
  return c;
}

void Worker::onInbox() {
  std::vector<InboxMessage> batch;
  inbox_.drain(batch);
  for (InboxMessage& m : batch) {
    switch (m.kind) {
      case InboxMessage::Kind::Stop:
        beginStop();
        break;
      case InboxMessage::Kind::Adopt:
        adopt(m);
        break;
      case InboxMessage::Kind::Send:
        send(m.handle, m.opcode, reinterpret_cast<const uint8_t*>(m.bytes.data()), m.bytes.size());
        break;
      case InboxMessage::Kind::Close:
        close(m.handle, m.code, m.bytes);
        break;
      case InboxMessage::Kind::Broadcast:
        broadcastLocal(m.channel, m.frame);
        m.frame->release(&pool_);
        break;
      case InboxMessage::Kind::Subscribe:
        subscribe(m.channel, m.handle);
        break;
      case InboxMessage::Kind::Unsubscribe:
        unsubscribe(m.channel, m.handle);
        break;
      case InboxMessage::Kind::Task:
        m.task();
        break;
    }
  }
}

void Worker::adopt(InboxMessage& m) {
  if (stopping_ || !haveSlot()) {
    if (m.tls) SSL_free(m.tls);
    if (m.counted) server_.limiter().release(&m.peer.sa);
    ::close(m.fd);
    return;
  }
  Connection* c = newConnection(m.fd, m.peer);
  stats_->sub(Counter::ConnectionsAccepted);  // counted by the worker that accepted it
  c->counted = m.counted;
  c->tls = m.tls;
  c->tlsContext = std::move(m.tlsContext);
  const Settings& s = server_.settings();
  c->hs = std::make_unique<HandshakeData>(s.maxHeaderBytes, s.maxHeaders);
  c->hs->instance = m.instance;
  armTimer(*c, nowMs_ + s.handshakeTimeoutMs);
  onHandshakeBytes(*c, m.bytes.data(), m.bytes.size());
  // Frames that came with the request may already sit decrypted inside the TLS session,
  // where epoll cannot see them.
  if (c->tls && c->state == ConnState::Open && SSL_has_pending(c->tls)) {
    readAgain_.push_back(handleOf(*c));
  }
}

void Worker::beginStop() {
  if (stopping_) return;
  stopping_ = true;
  for (int l : listeners_) {
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, l, nullptr);
    ::close(l);
  }
  listeners_.clear();
  for (Connection* c : slots_) {
    if (!c) continue;
    if (c->state == ConnState::Handshake) {
      kill(*c, nullptr);
    } else if (c->state == ConnState::Open) {
      beginClose(*c, 1001, "server shutting down");
    }
  }
}

void Worker::armTimer(Connection& c, uint64_t deadline) {
  c.deadlineMs = deadline;
  timers_.push(TimerEntry{deadline, handleOf(c)});
}

void Worker::scheduleActivityTimer(Connection& c) {
  const Settings& s = server_.settings();
  uint64_t next = UINT64_MAX;
  if (s.idleTimeoutMs) next = c.lastActivityMs + s.idleTimeoutMs;
  if (s.pingIntervalMs && !c.pingOutstanding) {
    next = std::min<uint64_t>(next, c.lastActivityMs + s.pingIntervalMs);
  }
  if (next == UINT64_MAX) {
    c.deadlineMs = 0;
  } else {
    armTimer(c, next);
  }
}

void Worker::onTimers() {
  const Settings& s = server_.settings();
  while (!timers_.empty() && timers_.top().deadline <= nowMs_) {
    TimerEntry e = timers_.top();
    timers_.pop();
    Connection* c = lookup(e.handle);
    // Entries are never removed early; one that is no longer current is skipped here.
    if (!c || c->state == ConnState::Dead || c->deadlineMs != e.deadline) continue;
    switch (c->state) {
      case ConnState::Handshake:
        stats_->add(Counter::Timeouts);
        stats_->add(Counter::HandshakeTimeouts);
        if (c->tls && !SSL_is_init_finished(c->tls)) {
          kill(*c, nullptr);  // no HTTP to answer inside an unfinished TLS handshake
          break;
        }
        rejectHandshake(*c, 408, "handshake timeout");
        break;
      case ConnState::Open: {
        // Not read while its handler waits: the client is not idle, we are.
        if (c->held) c->lastActivityMs = nowMs_;
        uint64_t since = nowMs_ - c->lastActivityMs;
        if (s.idleTimeoutMs && since >= s.idleTimeoutMs) {
          stats_->add(Counter::Timeouts);
          stats_->add(Counter::IdleTimeouts);
          beginClose(*c, 1001, "idle timeout");
          break;
        }
        if (s.pingIntervalMs && !c->pingOutstanding && since >= s.pingIntervalMs) {
          queueFrame(*c, Opcode::Ping, nullptr, 0);
          c->pingOutstanding = true;
        }
        scheduleActivityTimer(*c);
        break;
      }
      case ConnState::Closing:
      case ConnState::Draining:
        stats_->add(Counter::Timeouts);
        kill(*c, nullptr);
        break;
      case ConnState::Dead:
        break;
    }
  }
}

SendStatus Worker::forward(Handle h, InboxMessage m) {
  // Fire and forget: the owning worker applies it (or finds the handle stale) later.
  if (h.worker >= server_.workerCount() || h.generation == 0) return SendStatus::NoConnection;
  server_.worker(h.worker).inbox().push(std::move(m));
  return SendStatus::Ok;
}

SendStatus Worker::send(uint64_t handle, Opcode op, const uint8_t* data, size_t len) {
  Handle h = Handle::unpack(handle);
  if (h.worker != index_) {
    return forward(h, {.kind = InboxMessage::Kind::Send,
                       .handle = handle,
                       .opcode = op,
                       .bytes = std::string(reinterpret_cast<const char*>(data), len)});
  }
  Connection* c = handle == currentHandle_ ? current_ : lookup(handle);
  if (!c || !c->opened || c->state == ConnState::Dead) return SendStatus::NoConnection;
  if (c->state != ConnState::Open) return SendStatus::Closing;
  if (c->out.bytes() > server_.settings().outboundHighWaterMark) {
    // The client does not read what we send: drop it rather than buffer without bound.
    stats_->add(Counter::SlowConsumers);
    kill(*c, "slow consumer: outbound queue over the high-water mark");
    return SendStatus::SlowConsumer;
  }
  if (len >= kWriteThroughBytes && c->out.empty() && !server_.settings().autoFragmentSize &&
      !c->tls) {
    writeThrough(*c, op, data, len);
  } else {
    queueFrame(*c, op, data, len);
  }
  stats_->add(Counter::MessagesOut);
  return SendStatus::Ok;
}

SendStatus Worker::close(uint64_t handle, uint16_t code, std::string_view reason) {
  Handle h = Handle::unpack(handle);
  if (h.worker != index_) {
    return forward(h, {.kind = InboxMessage::Kind::Close,
                       .handle = handle,
                       .code = code,
                       .bytes = std::string(reason)});
  }
  Connection* c = lookup(handle);
  if (!c || !c->opened || c->state == ConnState::Dead) return SendStatus::NoConnection;
  if (c->state != ConnState::Open) return SendStatus::Closing;
  beginClose(*c, code, reason);
  return SendStatus::Ok;
}

SendStatus Worker::subscribe(uint64_t channel, uint64_t handle) {
  if (!server_.channels().exists(channel)) return SendStatus::NoChannel;
  Handle h = Handle::unpack(handle);
  if (h.worker != index_) {
    return forward(h,
                   {.kind = InboxMessage::Kind::Subscribe, .handle = handle, .channel = channel});
  }
  Connection* c = lookup(handle);
  if (!c || !c->opened || c->state == ConnState::Dead) return SendStatus::NoConnection;
  for (uint64_t ch : c->channels) {
    if (ch == channel) return SendStatus::Ok;  // already subscribed
  }
  c->channels.push_back(channel);
  subscribers_[channel].push_back(handle);
  return SendStatus::Ok;
}

SendStatus Worker::unsubscribe(uint64_t channel, uint64_t handle) {
  if (!server_.channels().exists(channel)) return SendStatus::NoChannel;
  Handle h = Handle::unpack(handle);
  if (h.worker != index_) {
    return forward(h,
                   {.kind = InboxMessage::Kind::Unsubscribe, .handle = handle, .channel = channel});
  }
  Connection* c = lookup(handle);
  if (!c || !c->opened || c->state == ConnState::Dead) return SendStatus::NoConnection;
  std::erase(c->channels, channel);
  auto it = subscribers_.find(channel);
  if (it != subscribers_.end()) {
    std::erase(it->second, handle);
    if (it->second.empty()) subscribers_.erase(it);
  }
  return SendStatus::Ok;
}

SendStatus Worker::broadcast(uint64_t channel, SharedBuffer* frame) {
  if (!server_.channels().exists(channel)) return SendStatus::NoChannel;
  // The same buffer goes to every worker: each appends it to its subscribers' queues.
  for (uint32_t w = 0; w < server_.workerCount(); ++w) {
    if (w == index_) {
      broadcastLocal(channel, frame);
      continue;
    }
    frame->retain();
    InboxMessage m;
    m.kind = InboxMessage::Kind::Broadcast;
    m.channel = channel;
    m.frame = frame;
    server_.worker(w).inbox().push(std::move(m));
  }
  return SendStatus::Ok;
}

void Worker::broadcastLocal(uint64_t channel, SharedBuffer* frame) {
  auto it = subscribers_.find(channel);
  if (it == subscribers_.end()) return;
  const uint64_t hwm = server_.settings().outboundHighWaterMark;
  for (uint64_t handle : it->second) {
    Connection* c = lookup(handle);
    // Subscriptions are removed at teardown; a closing connection just gets nothing.
    if (!c || c->state != ConnState::Open) continue;
    if (c->out.bytes() > hwm) {
      stats_->add(Counter::SlowConsumers);
      kill(*c, "slow consumer: outbound queue over the high-water mark");
      continue;
    }
    c->out.appendShared(frame);
    stats_->add(Counter::MessagesOut);
    markDirty(*c);
  }
}

void Worker::dropSubscriptions(Connection& c) {
  const uint64_t handle = handleOf(c);
  for (uint64_t channel : c.channels) {
    auto it = subscribers_.find(channel);
    if (it == subscribers_.end()) continue;
    std::erase(it->second, handle);
    if (it->second.empty()) subscribers_.erase(it);
  }
  c.channels.clear();
}

uint64_t Worker::addTimer(uint64_t delayMs, std::function<void()> fn) {
  return hostTimers_.add(nowMs_ + delayMs, std::move(fn));
}

void Worker::post(std::function<void()> fn) {
  InboxMessage m;
  m.kind = InboxMessage::Kind::Task;
  m.task = std::move(fn);
  inbox_.push(std::move(m));
}

void Worker::watch(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = kIoTagBase + uint64_t(fd);
  bool known = io_.contains(fd);
  io_[fd] = handler;
  ::epoll_ctl(epfd_, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
}

void Worker::unwatch(int fd) {
  if (io_.erase(fd)) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

void Worker::holdCurrent() {
  if (!current_ || current_->held) return;
  current_->held = true;
  if (current_->state == ConnState::Open && !current_->paused) {
    current_->paused = true;
    setEpoll(*current_, current_->epollOut);
  }
}

void Worker::release(uint64_t handle) {
  Connection* c = lookup(handle);
  if (!c || !c->held) return;
  c->held = false;
  deliverPending(*c);
}

void Worker::deliverPending(Connection& c) {
  const uint64_t handle = handleOf(c);
  while (!c.pending.empty() && !c.held && c.state == ConnState::Open) {
    Connection::PendingMessage m = std::move(c.pending.front());
    c.pending.pop_front();
    InboundMessage item{reinterpret_cast<const uint8_t*>(m.data.data()), m.data.size(), m.opcode};
    asCurrent(handle, [&] {
      MessageBatch batch{handle, &item, 1};
      c.instance->onMessages(batch);
    });
  }
  if (c.state != ConnState::Open) {
    c.pending.clear();
    return;
  }
  if (!c.held && c.paused) {
    c.paused = false;
    setEpoll(c, c.epollOut);
    if (c.tls && SSL_has_pending(c.tls)) readAgain_.push_back(handle);
  }
}

void Worker::closeConnectionsOf(const ServiceInstance* instance, uint16_t code,
                                std::string_view reason) {
  for (Connection* c : slots_) {
    if (c && c->instance == instance && c->state == ConnState::Open) {
      c->held = false;
      c->pending.clear();
      beginClose(*c, code, reason);
    }
  }
}

}  // namespace lapps
