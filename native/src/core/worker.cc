// The worker loop: accept, inbox, timers, and the service-facing API. Per-connection
// protocol handling is in connection.cc.
#include "core/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/server.h"
#include "io/clock.h"
#include "protocol/handshake-response.h"
#include "protocol/http-fields.h"
#include "protocol/utf8-validator.h"
#include "security/conn-limiter.h"
#include "security/tls-info.h"

namespace lapps {

namespace {

// Epoll tags below Handle::kMinLive name the worker's own fds; connection handles are
// larger because their generation is never 0.
constexpr uint64_t kInboxTag = 1;
constexpr uint64_t kListenerTagBase = 16;
// Sockets of outbound clients (lapps.websocket, lapps.tcp, cws), watched through the
// Loop, are tagged above every handle.
static_assert(Handle::kMax < Loop::kWatchTagBase);

constexpr size_t kReadBufferSize = 256 * 1024;
constexpr int kAcceptBurst = 64;
constexpr uint64_t kAcceptPauseMs = 100;
// At stop: most queued clients answered 503 per listener (a flood must not delay the stop).
constexpr int kStopAcceptMax = 4096;
// Memory housekeeping: a tick is quiet when the worker moved fewer bytes in it than
// kQuietBytes, or than an eighth of the busiest tick of the spell (a burst has ended even
// if steady traffic goes on).
constexpr uint64_t kMemoryTickMs = 1000;
constexpr uint64_t kQuietBytes = 64 * 1024;

}  // namespace

Worker::Worker(Server& server, uint32_t index)
    : server_(server),
      index_(index),
      name_("worker " + std::to_string(index)),
      readBuf_(kReadBufferSize),
      stats_(server.stats(index)),
      accessLog_(server.settings().accessLog) {
  // The coarse clock moves in ticks (often 4 ms): a slice is spent once it has lasted
  // kSliceNs for sure, never earlier (that would only cut fast handlers' batches short).
  timespec res{};
  ::clock_getres(CLOCK_MONOTONIC_COARSE, &res);
  clockResNs_ = uint64_t(res.tv_sec) * 1000000000 + uint64_t(res.tv_nsec);
  sliceLimitNs_ = kSliceNs + clockResNs_;
}

Worker::~Worker() {
  join();
  // Published during the shutdown, after the last turn: nobody to write them to.
  for (const PendingBroadcast& pb : pendingBroadcasts_) pb.frames->release(nullptr);
  pendingBroadcasts_.clear();
  for (int fd : listeners_) ::close(fd);
  for (Connection* c : slots_) {
    if (c) {
      if (c->fd >= 0) ::close(c->fd);
      records_.destroy(c);
    }
  }
}

void Worker::log(LogLevel level, std::string message) {
  server_.events().log(level, name_, std::move(message));
}

void Worker::logRepeated(RepeatedLog& r, LogLevel level, std::string message) {
  if (!r.note(nowMs_, message)) return;
  log(level, std::move(message));
  // The flush timer re-arms itself while repeats keep coming; `r` is a member of this worker.
  struct Flush {
    Worker* w;
    RepeatedLog* r;
    LogLevel level;
    void operator()() const {
      std::string line = r->flush(w->nowMs_);
      if (line.empty()) return;
      w->log(level, std::move(line));
      w->addTimer(r->intervalMs(), *this);
    }
  };
  addTimer(r.intervalMs(), Flush{this, &r, level});
}

void Worker::start() {
  char name[16];
  std::snprintf(name, sizeof name, "lapps-io-%u", index_);
  thread_.start(name, [this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run() {
  tick();
  add(inbox_.fd(), EPOLLIN, kInboxTag);
  for (size_t i = 0; i < listeners_.size(); ++i) add(listeners_[i], EPOLLIN, kListenerTagBase + i);
  for (ServiceInstance* inst : instances_) inst->onStart();

  for (;;) {
    uint64_t d = UINT64_MAX;
    if (!timers_.empty()) d = timers_.top().deadline;
    if (listenersPaused_) d = std::min(d, resumeListenersAt_);
    if (!backlog_.empty()) d = 0;  // backlogs are served every turn
    int n = turn(d, [this](uint64_t tag, uint32_t events) {
      if (tag >= Handle::kMinLive) {
        onConnectionEvent(tag, events);
      } else if (tag == kInboxTag) {
        onInbox();
      } else if (tag >= kListenerTagBase) {
        onListener(size_t(tag - kListenerTagBase));
      }
    });
    if (listenersPaused_ && nowMs_ >= resumeListenersAt_ && !stopping_) {
      listenersPaused_ = false;
      for (size_t i = 0; i < listeners_.size(); ++i) {
        add(listeners_[i], EPOLLIN, kListenerTagBase + i);
      }
    }
    onTimers();
    // Any event arms the memory tick; an idle worker sleeps with none.
    if (n > 0 && !memoryTickArmed_) {
      memoryTickArmed_ = true;
      addTimer(kMemoryTickMs, [this] { memoryTick(); });
    }
    runTimers();
    if (!readAgain_.empty()) {
      std::vector<uint64_t> again;
      again.swap(readAgain_);
      for (uint64_t h : again) {
        Connection* c = lookup(h);
        if (c && !c->paused && c->state != ConnState::Dead) c->readAgain(*this);
      }
    }
    if (!backlog_.empty()) serveBacklogs();
    deliverBroadcasts();
    // Handlers run during flushes and teardowns may dirty or kill other connections.
    if (!dirtyList_.empty() || !deadList_.empty()) {
      const bool timed = dirtyList_.size() >= kTimedFlush;
      const uint64_t started = timed ? clockNs(CLOCK_MONOTONIC) : 0;
      while (!dirtyList_.empty() || !deadList_.empty()) {
        flushDirty();
        reapDead();
        deliverBroadcasts();  // published by handlers of teardowns (onDisconnect)
      }
      if (timed || deliverNs_) {
        adaptSlice((timed ? clockNs(CLOCK_MONOTONIC) - started : 0) + deliverNs_);
        deliverNs_ = 0;
      } else if (sliceNs_ != kSliceNs) {
        adaptSlice(0);
      }
    } else if (deliverNs_) {
      adaptSlice(deliverNs_);
      deliverNs_ = 0;
    }
    if (stopping_ && liveConnections_ == 0) break;
  }
  for (ServiceInstance* inst : instances_) inst->onShutdown();
}

void Worker::onListener(size_t index) {
  // An event of this batch for a listener the stop has closed meanwhile.
  if (index >= listeners_.size()) return;
  // The turn's clock may be late by the events handled before this one: a new connection's
  // deadlines count from when it is accepted, not from when the turn began.
  nowMs_ = monotonicMs();
  const int fd = listeners_[index];
  const Policy& policy = *policy_;
  static const std::shared_ptr<TlsServerContext> kPlain;
  const std::shared_ptr<TlsServerContext>& tls =
      index < policy.tls.size() ? policy.tls[index] : kPlain;
  ConnLimiter& limiter = server_.limiter();
  const Settings& s = server_.settings();
  const bool proxied = index < s.listeners.size() && s.listeners[index].proxyProtocol;
  for (int k = 0; k < kAcceptBurst; ++k) {
    PeerAddress peer{};
    socklen_t len = sizeof peer;
    int cfd = ::accept4(fd, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      // Out of descriptors or memory: stop accepting for a moment instead of spinning
      // on a listener that stays readable. This repeats every pause while it lasts.
      logRepeated(acceptErrors_, LogLevel::Warn,
                  std::string("accept failed: ") + std::strerror(errno) + "; pausing accepts");
      listenersPaused_ = true;
      resumeListenersAt_ = nowMs_ + kAcceptPauseMs;
      for (int l : listeners_) remove(l);
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
    // Behind a proxy the client's address is learned later (PROXY header, X-Forwarded-For):
    // the server-wide count now, the address's in admitClient.
    const bool later =
        proxied || (policy.trustedProxies && policy.trustedProxies->allows(&peer.sa));
    const bool counted = limiter.active();
    if (counted) {
      switch (later ? limiter.admitTotal() : limiter.admit(&peer.sa, nowMs_)) {
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
    c->counted = counted && !later;
    c->addressPending = counted && later;
    if (proxied) c->state = ConnState::ProxyHeader;  // then TLS or HTTP (readProxyHeader)
    armTimer(*c, nowMs_ + (proxied ? s.proxyProtocolTimeoutMs : s.handshakeTimeoutMs));
    if (tls) {
      c->tls = tls->newSession(cfd);
      c->hs->tlsContext = tls;
      if (!c->tls) {
        logRepeated(tlsSessionErrors_, LogLevel::Error,
                    "TLS: cannot create a session (out of memory?)");
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
  Connection* c = records_.make();
  c->fd = fd;
  c->slot = slot;
  c->generation = gen;
  const Settings& s = server_.settings();
  c->hs = std::make_unique<HandshakeData>(s.maxHeaderBytes, s.maxHeaders);
  c->hs->peer = peer;
  c->hs->acceptedMs = nowMs_;
  c->lastActivityMs = nowMs_;
  slots_[slot] = c;
  ++liveConnections_;
  stats_->add(Counter::ConnectionsOpen);
  stats_->add(Counter::ConnectionsAccepted);
  add(fd, EPOLLIN | EPOLLRDHUP, handleOf(*c));
  return c;
}

void Worker::onConnectionEvent(uint64_t handle, uint32_t events) {
  Connection* c = lookup(handle);
  if (!c || c->state == ConnState::Dead) return;
  if (c->state == ConnState::ProxyHeader) [[unlikely]] {
    readProxyHeader(*c);
    return;
  }
  c->onEvent(*this, events);
}

void Worker::completeHandshake(Connection& c) {
  HandshakeData& h = *c.hs;
  const HandshakeRequest& req = h.parser.request();
  // Behind a proxy: the real client first, so that everything below (and the log) sees it.
  if (h.instance < 0 && (c.addressPending || policy_->trustedProxies) && !admitClient(c)) return;
  const ServiceRuntime* svc = server_.route(req.target);
  if (!svc) {
    c.rejectHandshake(*this, 404, "no service at this path");
    return;
  }
  // Checked before any hand-over or 101: a refused client never sees a WebSocket.
  if (h.instance < 0 && svc->settings.index < policy_->services.size()) {
    const ServicePolicy& sp = policy_->services[svc->settings.index];
    if (sp.acl && !sp.acl->allows(&h.peer.sa)) {
      stats_->add(Counter::AclRefusedAtHandshake);
      c.rejectHandshake(*this, 403, "forbidden");
      return;
    }
    if (!sp.origin.allows(req.origin, req.host, c.tls != nullptr)) {
      stats_->add(Counter::OriginRefused);
      c.rejectHandshake(*this, 403, originRefusal(req.origin, svc->settings.name));
      return;
    }
  }
  int32_t inst = h.instance;
  if (inst < 0) {
    // Prefer an instance on this worker: no hand-over, and messages never cross threads.
    uint32_t k = svc->next.fetch_add(1, std::memory_order_relaxed);
    const auto& local = svc->localInstances[index_];
    inst = local.empty() ? int32_t(k % svc->instances.size()) : local[k % local.size()];
  }
  uint32_t owner = svc->instanceWorker[size_t(inst)];
  if (owner != index_) {
    // Hand the socket and every byte read so far to the worker that runs the instance.
    InboxMessage m;
    m.kind = InboxMessage::Kind::Adopt;
    m.fd = c.fd;
    m.instance = inst;
    m.peer = h.peer;
    m.bytes.assign(h.buf.get(), h.size);
    m.counted = c.counted;
    m.acceptedMs = h.acceptedMs;
    m.tls = c.tls;
    m.tlsContext = std::move(h.tlsContext);
    remove(c.fd);
    c.fd = -1;  // no longer ours: teardown must not close it, free its TLS or uncount it
    c.tls = nullptr;
    c.counted = false;
    kill(c, nullptr);
    server_.worker(owner).inbox().push(std::move(m));
    return;
  }

  if (svc->instances[size_t(inst)]->wantsConnect()) [[unlikely]] {
    askService(c, svc, inst);
    return;
  }
  c.open(*this, svc, inst);
}

void Worker::askService(Connection& c, const ServiceRuntime* svc, int32_t inst) {
  HandshakeData& h = *c.hs;
  const HandshakeRequest& req = h.parser.request();
  ConnectRequest r;
  r.head = std::string_view(h.buf.get(), req.headerBytes);
  r.method = req.method;
  r.target = requestLineTarget(r.head);
  splitTarget(req.target, r.path, r.query);
  r.origin = req.origin;
  r.subprotocol = selectSubprotocol(req.protocols, svc->settings.subprotocols);
  r.peer = h.peer;
  TlsInfo tls;
  if (c.tls) {
    tls = describeTls(c.tls);
    r.tls = &tls;
  }
  ServiceInstance* instance = svc->instances[size_t(inst)].get();
  h.service = svc;
  c.instance = instance;
  h.instance = inst;
  h.waiting = true;
  // A request that filled the buffer: nothing more can be kept until the answer.
  if (h.size == h.cap) c.pauseReading(*this);
  ConnectVerdict v = instance->onConnect(handleOf(c), r);
  // The call may have ended the handshake (a stop): answer only one still waiting.
  if (v.kind == ConnectVerdict::Kind::Pending || c.state != ConnState::Handshake || !c.hs) return;
  finishConnect(c, std::move(v));
}

void Worker::finishConnect(Connection& c, ConnectVerdict&& v) {
  c.hs->waiting = false;
  if (v.kind == ConnectVerdict::Kind::Refuse) {
    stats_->add(Counter::ConnectRefused);
    std::string_view body = v.reason;
    if (body.empty()) body = reasonPhrase(v.status);
    c.rejectHandshake(*this, v.status, body);
    return;
  }
  // Reading paused while the buffer was full: on again (frames are read from now on).
  if (c.paused) c.resumeReading(*this);
  c.open(*this, c.hs->service, c.hs->instance, std::move(v.user));
}

Connection* Worker::waitingHandshake(uint32_t service, uint64_t handle) {
  Connection* c = lookup(handle);
  if (!c || c->state != ConnState::Handshake || !c->hs || !c->hs->waiting ||
      c->instance->service() != service) {
    return nullptr;
  }
  return c;
}

bool Worker::answerConnect(uint32_t service, uint64_t handle, ConnectVerdict&& verdict) {
  if (!waitingHandshake(service, handle)) return false;
  // On the next turn of the loop: the caller is inside a service's code (a resumed Lua
  // coroutine, a C callback), and the 101 delivers the frames that waited to that service.
  addTimer(0, [this, service, handle, v = std::move(verdict)]() mutable {
    if (Connection* c = waitingHandshake(service, handle)) finishConnect(*c, std::move(v));
  });
  return true;
}

std::shared_ptr<const ConnInfo> Worker::info(uint32_t service, uint64_t handle) {
  Handle h = Handle::unpack(handle);
  if (h.worker >= server_.workerCount() || h.generation == 0) return nullptr;
  std::shared_ptr<const ConnInfo> p = server_.worker(h.worker).infos().find(h.slot, h.generation);
  if (!p || p->service != service) return nullptr;
  return p;
}

void Worker::fail(uint64_t handle) {
  Connection* c = lookup(handle);
  if (!c || c->state != ConnState::Open) return;
  stats_->add(Counter::ServiceErrors);
  c->beginClose(*this, 1011, "internal error");
}

void Worker::countParseError(ParseError e) {
  stats_->add(Counter::ProtocolErrors);
  if (e == ParseError::MessageTooBig) stats_->add(Counter::MessageTooBig);
  if (e == ParseError::FrameTooBig) stats_->add(Counter::FrameTooBig);
  if (e == ParseError::TooManyFragments) stats_->add(Counter::TooManyFragments);
}

void Worker::kill(Connection& c, const char* why) {
  if (c.state == ConnState::Dead) return;
  if (why) log(LogLevel::Debug, std::string("closing connection: ") + why);
  c.state = ConnState::Dead;
  deadList_.push_back(handleOf(c));
}

void Worker::reapDead() {
  // Index loop: onDisconnect handlers may kill more connections while we go.
  for (size_t i = 0; i < deadList_.size(); ++i) {
    Connection* c = lookup(deadList_[i]);
    if (c) teardown(*c);
  }
  deadList_.clear();
}

void Worker::teardown(Connection& c) {
  directory_.clear(c.slot);  // other workers stop forwarding to it
  // Its address: in the handshake data until the 101, then in the ConnInfoTable only.
  PeerAddress peer{};
  if (c.hs) peer = c.hs->peer;
  if (c.opened) infos_.clear(c.slot, c.hs ? nullptr : &peer);
  if (c.counted) server_.limiter().release(&peer.sa);
  c.releaseTransport();
  // Its client was never known: only its place in the total was taken.
  if (c.addressPending) server_.limiter().releaseTotal();
  if (c.fd >= 0) ::close(c.fd);  // also removes it from the epoll set
  c.fd = -1;
  if (c.opened) {
    c.opened = false;
    c.instance->onDisconnect(handleOf(c));
  }
  if (c.extras && !c.extras->channels.empty()) {
    subscriptions_.removeAll(c.extras->channels, handleOf(c));
  }
  c.out.clear(&pool_);
  slots_[c.slot] = nullptr;
  freeSlots_.push_back(c.slot);
  --liveConnections_;
  stats_->sub(Counter::ConnectionsOpen);
  records_.destroy(&c);
}

// Out of line: inlined into run()'s event dispatch it costs the echo path registers
// (callgrind: about 10 instructions per echoed message).
__attribute__((noinline)) void Worker::onInbox() {
  std::vector<InboxMessage> batch;
  if (!handleInbox(batch)) return;
  // Broadcasts from another thread (a standalone service, a service on another worker)
  // usually come in bursts, and the first one woke us: the rest is gathered before the
  // joined frames go out, so that a burst costs one write per subscriber, not two or more.
  // On a shared core the yield lets the publisher go on. Bounded: while the next one comes
  // within kGatherGapNs, for kGatherMaxNs at most.
  const uint64_t start = clockNs(CLOCK_MONOTONIC);
  uint64_t last = start;
  for (;;) {
    if (inbox_.pending()) {
      batch.clear();
      if (!handleInbox(batch)) break;
      last = clockNs(CLOCK_MONOTONIC);
      if (last - start >= kGatherMaxNs) break;
      continue;
    }
    const uint64_t now = clockNs(CLOCK_MONOTONIC);
    if (now - last >= kGatherGapNs || now - start >= kGatherMaxNs) break;
    sched_yield();
  }
}

bool Worker::handleInbox(std::vector<InboxMessage>& batch) {
  inbox_.drain(batch);
  bool broadcasts = false;
  for (InboxMessage& m : batch) {
    switch (m.kind) {
      case InboxMessage::Kind::Stop:
        beginStop(m.deadlineMs);
        break;
      case InboxMessage::Kind::Adopt:
        adopt(m);
        break;
      case InboxMessage::Kind::Send:
        send(m.service, m.handle, m.opcode, reinterpret_cast<const uint8_t*>(m.bytes.data()),
             m.bytes.size());
        break;
      case InboxMessage::Kind::Close:
        close(m.service, m.handle, m.code, m.bytes);
        break;
      case InboxMessage::Kind::Broadcast:
        broadcastLocal(m.channel, m.frame);
        m.frame->release(&pool_);
        broadcasts = true;
        break;
      case InboxMessage::Kind::Subscribe:
        subscribe(m.service, m.channel, m.handle);
        break;
      case InboxMessage::Kind::Unsubscribe:
        unsubscribe(m.service, m.channel, m.handle);
        break;
      case InboxMessage::Kind::Task:
        m.task();
        break;
    }
  }
  return broadcasts;
}

void Worker::adopt(InboxMessage& m) {
  if (!haveSlot()) {
    if (m.tls) SSL_free(m.tls);
    if (m.counted) server_.limiter().release(&m.peer.sa);
    ::close(m.fd);
    return;
  }
  Connection* c = newConnection(m.fd, m.peer);
  stats_->sub(Counter::ConnectionsAccepted);  // counted by the worker that accepted it
  c->counted = m.counted;
  c->hs->acceptedMs = m.acceptedMs;
  c->tls = m.tls;
  const Settings& s = server_.settings();
  c->hs->tlsContext = std::move(m.tlsContext);
  c->hs->instance = m.instance;
  if (stopping_) {
    // Handed over after this worker began to stop: refused like any new client.
    c->rejectHandshake(*this, 503, "server stopping");
    return;
  }
  armTimer(*c, nowMs_ + s.handshakeTimeoutMs);
  c->onHandshakeBytes(*this, m.bytes.data(), m.bytes.size());
  // Frames that came with the request may already sit decrypted inside the TLS session,
  // where epoll cannot see them.
  if (c->state == ConnState::Open && c->hasBufferedInput()) {
    readAgain_.push_back(handleOf(*c));
  }
}

void Worker::beginStop(uint64_t deadlineMs) {
  if (stopping_) {
    // Asked again, to finish sooner (the process is going away).
    if (deadlineMs < stopDeadline_) {
      stopDeadline_ = deadlineMs;
      if (deadlineMs <= nowMs_) {
        endDrain();
      } else {
        addTimer(deadlineMs - nowMs_, [this] { endDrain(); });
      }
    }
    return;
  }
  stopping_ = true;
  stopDeadline_ = deadlineMs;
  // New clients are refused by the kernel from now on (connection refused). Those already
  // in a listener's accept queue would get a reset from close(): they get 503 instead.
  const Policy& policy = *policy_;
  for (size_t i = 0; i < listeners_.size(); ++i) {
    const int l = listeners_[i];
    remove(l);
    const bool tls = i < policy.tls.size() && policy.tls[i] != nullptr;
    for (int k = 0; k < kStopAcceptMax; ++k) {
      PeerAddress peer{};
      socklen_t len = sizeof peer;
      int cfd = ::accept4(l, &peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (cfd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        break;
      }
      if (policy.acl && !policy.acl->allows(&peer.sa)) {
        ::close(cfd);  // refused addresses learn nothing, not even that we stop
        continue;
      }
      refuseAtAccept(cfd, 503, "server stopping", tls);
    }
    ::close(l);
  }
  listeners_.clear();
  listenersPaused_ = false;
  // Index loop: the handlers run by the reads below may close (never add) connections.
  for (size_t i = 0; i < slots_.size(); ++i) {
    Connection* c = slots_[i];
    if (!c) continue;
    if (c->state == ConnState::ProxyHeader) {
      kill(*c, nullptr);  // no HTTP before the PROXY header
      continue;
    }
    if (c->state == ConnState::Handshake) {
      if (c->inTlsHandshake()) {
        kill(*c, nullptr);  // no HTTP to answer inside an unfinished TLS handshake
      } else {
        c->rejectHandshake(*this, 503, "server stopping");
      }
      continue;
    }
    if (c->state != ConnState::Open) continue;
    // What the client sent before the stop began is handled; nothing after it is read
    // until our close frame is out (then it is read and discarded).
    c->readBeforeStop(*this);
    if (c->state != ConnState::Open) continue;
    c->pauseReading(*this);
    closeIfDrained(*c);
  }
  if (deadlineMs <= nowMs_) {
    endDrain();
  } else {
    addTimer(deadlineMs - nowMs_, [this] { endDrain(); });
  }
}

void Worker::closeIfDrained(Connection& c) {
  if (c.state == ConnState::Open && !c.held && !c.hasPending() && !c.hasBacklog()) {
    c.beginClose(*this, 1001, "server shutting down");
  }
}

void Worker::endDrain() {
  if (drainEnded_) return;
  drainEnded_ = true;
  size_t cut = 0;
  size_t waiting = 0;
  for (Connection* c : slots_) {
    if (!c || c->state != ConnState::Open) continue;
    ++cut;
    // Its suspended handler may still resume later: its sends then find the connection
    // closing and are dropped.
    c->held = false;
    if (c->extras) {
      waiting += c->extras->pending.size();
      c->extras->pending.clear();
    }
    c->beginClose(*this, 1001, "server shutting down");
  }
  if (cut) {
    log(LogLevel::Warn, "drain timeout: closed " + std::to_string(cut) +
                            " connection(s) whose handlers had not finished (" +
                            std::to_string(waiting) + " more message(s) were not handled)");
  }
}

void Worker::memoryTick() {
  memoryTickArmed_ = false;
  const uint64_t bytes = stats_->v[uint32_t(Counter::BytesIn)].load(std::memory_order_relaxed) +
                         stats_->v[uint32_t(Counter::BytesOut)].load(std::memory_order_relaxed);
  const uint64_t moved = bytes - bytesAtTick_;
  bytesAtTick_ = bytes;
  spellBytes_ += moved;
  if (moved >= std::max(kQuietBytes, spellPeak_ / 8)) {
    // Still busy: whatever the spell uses is likely used again. Look again later.
    spellPeak_ = std::max(spellPeak_, moved);
    memoryTickArmed_ = true;
    addTimer(kMemoryTickMs, [this] { memoryTick(); });
    return;
  }
  releaseMemory(spellBytes_);
  spellBytes_ = 0;
  spellPeak_ = 0;
}

void Worker::releaseMemory(uint64_t spellBytes) {
  // Lua garbage stays until an allocation steps the collector, which an idle state never
  // does; C++ buffers were freed as they emptied.
  uint64_t collected = 0;
  for (ServiceInstance* inst : instances_) collected += inst->onIdle();
  // Reassembly buffers kept for the next large message of a busy connection, the segment
  // tables of emptied outbound queues, and the extras of connections that are at rest.
  const size_t kInline = std::string().capacity();
  for (Connection* c : slots_) {
    if (!c) continue;
    c->out.trim();
    ConnectionExtras* x = c->extras.get();
    if (!x) continue;
    if (x->atRest() && !c->pongPending && !c->leftover && !c->epollOut) {
      recycle(x->backlog);
      c->extras.reset();
    } else if (spellBytes >= (1 << 20) && x->message.empty() && x->message.capacity() > kInline) {
      std::string().swap(x->message);
    }
  }
  // Blocks of connection records that the spell's connections left empty.
  const uint64_t blocks = records_.release();
  server_.memory().noteReleased(spellBytes + collected + blocks + handshakeBytesFreed_);
  handshakeBytesFreed_ = 0;
  const uint64_t trimmed = server_.memory().trimIfWorthIt();
  if (collected + trimmed >= (1 << 20)) {
    log(LogLevel::Debug, "quiet after a busy spell: Lua collected " +
                             std::to_string(collected >> 10) + " KiB, " +
                             std::to_string(trimmed >> 10) + " KiB returned to the system");
  }
}

void Worker::armTimer(Connection& c, uint64_t deadline) {
  c.deadlineMs = deadline;
  // One entry per connection while its deadline only moves later (the handshake's, then
  // the activity deadlines): the entry queued is due first and queues the current deadline
  // then (onTimers). An earlier deadline gets an entry of its own; the later one goes stale.
  if (c.timerQueuedMs != 0 && c.timerQueuedMs <= deadline) return;
  c.timerQueuedMs = deadline;
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
  while (!timers_.empty() && timers_.top().deadline <= nowMs_) {
    TimerEntry e = timers_.top();
    timers_.pop();
    Connection* c = lookup(e.handle());
    if (!c || c->state == ConnState::Dead) continue;
    if (e.outbound()) {
      if (c->extras && c->extras->outboundDeadlineMs == e.deadline) c->checkSlowConsumer(*this);
      continue;
    }
    // Entries are never removed early; one that is no longer queued is skipped here.
    if (c->timerQueuedMs != e.deadline) continue;
    c->timerQueuedMs = 0;
    if (c->deadlineMs == e.deadline) {
      c->onDeadline(*this);
    } else if (c->deadlineMs > e.deadline) {
      armTimer(*c, c->deadlineMs);  // moved later meanwhile
    }
  }
}

SendStatus Worker::forward(Handle h, InboxMessage m) {
  // Answered now if the handle names no connection of the caller's service there; else
  // fire and forget: the owning worker applies it (or finds the handle stale) later.
  if (h.worker >= server_.workerCount() ||
      !server_.worker(h.worker).directory().routes(h, m.service)) {
    return SendStatus::NoConnection;
  }
  server_.worker(h.worker).inbox().push(std::move(m));
  return SendStatus::Ok;
}

bool Worker::reaches(uint32_t service, uint64_t handle) {
  Handle h = Handle::unpack(handle);
  if (h.worker != index_) {
    return h.worker < server_.workerCount() &&
           server_.worker(h.worker).directory().routes(h, service);
  }
  Connection* c = lookup(handle);
  return c && c->opened && c->state != ConnState::Dead && c->instance->service() == service;
}

SendStatus Worker::send(uint32_t service, uint64_t handle, Opcode op, const uint8_t* data,
                        size_t len) {
  Handle h = Handle::unpack(handle);
  if (h.worker != index_) {
    return forward(h, {.kind = InboxMessage::Kind::Send,
                       .handle = handle,
                       .service = service,
                       .opcode = op,
                       .bytes = std::string(reinterpret_cast<const char*>(data), len)});
  }
  deliverBroadcasts();  // what was published before this send goes out before it
  Connection* c = handle == dispatchingHandle_ ? dispatching_ : lookup(handle);
  // Another service's connection does not exist as far as the caller is concerned.
  if (!c || !c->opened || c->state == ConnState::Dead || c->instance->service() != service) {
    return SendStatus::NoConnection;
  }
  if (c->state != ConnState::Open) return SendStatus::Closing;
  if (c->out.bytes() > server_.settings().outboundHighWaterMark) {
    SendStatus st = c->makeRoom(*this);
    if (st != SendStatus::Ok) return st;
  }
  // Written through on the plain transport only (a TLS record copies the bytes anyway).
  if (len >= Connection::kWriteThroughBytes && c->out.empty() &&
      !server_.settings().autoFragmentSize && !c->tls && !c->tlsRecords) {
    c->writeThrough(*this, op, data, len);
  } else {
    c->queueFrame(*this, op, data, len);
  }
  stats_->add(Counter::MessagesOut);
  return SendStatus::Ok;
}

SendStatus Worker::close(uint32_t service, uint64_t handle, uint16_t code,
                         std::string_view reason) {
  Handle h = Handle::unpack(handle);
  if (h.worker != index_) {
    return forward(h, {.kind = InboxMessage::Kind::Close,
                       .handle = handle,
                       .service = service,
                       .code = code,
                       .bytes = std::string(reason)});
  }
  deliverBroadcasts();  // what was published before the close goes out before it
  Connection* c = lookup(handle);
  if (!c || !c->opened || c->state == ConnState::Dead || c->instance->service() != service) {
    return SendStatus::NoConnection;
  }
  if (c->state != ConnState::Open) return SendStatus::Closing;
  c->beginClose(*this, code, reason);
  return SendStatus::Ok;
}

SendStatus Worker::subscribe(uint32_t service, uint64_t channel, uint64_t handle) {
  return membership(InboxMessage::Kind::Subscribe, service, channel, handle);
}

SendStatus Worker::unsubscribe(uint32_t service, uint64_t channel, uint64_t handle) {
  return membership(InboxMessage::Kind::Unsubscribe, service, channel, handle);
}

SendStatus Worker::membership(InboxMessage::Kind kind, uint32_t service, uint64_t channel,
                              uint64_t handle) {
  if (!server_.channels().exists(channel)) return SendStatus::NoChannel;
  Handle h = Handle::unpack(handle);
  if (h.worker != index_) {
    return forward(h, {.kind = kind, .handle = handle, .service = service, .channel = channel});
  }
  // A subscription counts from now: what was published before it is not for it (and
  // stays for a connection that unsubscribes now).
  deliverBroadcasts();
  Connection* c = lookup(handle);
  if (!c || !c->opened || c->state == ConnState::Dead || c->instance->service() != service) {
    return SendStatus::NoConnection;
  }
  if (kind == InboxMessage::Kind::Subscribe) {
    subscriptions_.add(c->extra().channels, channel, handle);
  } else {
    if (c->extras) subscriptions_.remove(c->extras->channels, channel, handle);
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
  if (!subscriptions_.of(channel)) return;
  const size_t len = frame->size();
  if (!pendingBroadcasts_.empty()) {
    PendingBroadcast& last = pendingBroadcasts_.back();
    const size_t total = last.frames->size() + len;
    if (last.channel == channel && len <= SharedBuffer::kPooledCapacity && total <= kMaxJoined) {
      if (!last.joined || last.frames->spare() < len) {
        // The second publish in a row: both frames into a buffer of our own (a pooled one
        // while they fit, then one that doubles, up to kMaxJoined), so that each subscriber
        // gets the turn's publishes in one segment and one write.
        const size_t cap = total <= SharedBuffer::kPooledCapacity
                               ? SharedBuffer::kPooledCapacity
                               : std::min(kMaxJoined, std::max(total, 2 * last.frames->capacity()));
        SharedBuffer* joined = pool_.take(cap);
        std::memcpy(joined->grow(last.frames->size()), last.frames->data(), last.frames->size());
        last.frames->release(&pool_);
        last.frames = joined;
        last.joined = true;
      }
      std::memcpy(last.frames->grow(len), frame->data(), len);
      ++last.count;
      return;
    }
  }
  frame->retain();
  pendingBroadcasts_.push_back(PendingBroadcast{channel, frame, 1, false});
}

void Worker::deliverBroadcastsNow() {
  // makeRoom below may flush, and a flush never sends: no delivery starts inside another.
  if (delivering_) return;
  delivering_ = true;
  const uint64_t hwm = server_.settings().outboundHighWaterMark;
  uint64_t delivered = 0;
  uint64_t bytesOut = 0;
  // Writes to many connections are timed, like a flush of many (adaptSlice).
  size_t total = 0;
  for (const PendingBroadcast& pb : pendingBroadcasts_) {
    const std::vector<uint64_t>* subscribers = subscriptions_.of(pb.channel);
    total += subscribers ? subscribers->size() : 0;
  }
  const bool timed = total >= kTimedFlush;
  const uint64_t started = timed ? clockNs(CLOCK_MONOTONIC) : 0;
  for (size_t p = 0; p < pendingBroadcasts_.size(); ++p) {
    const PendingBroadcast pb = pendingBroadcasts_[p];
    const std::vector<uint64_t>* subscribers = subscriptions_.of(pb.channel);
    const size_t n = subscribers ? subscribers->size() : 0;
    // One reference per subscriber, taken at once (one atomic add, not one per subscriber);
    // those not used are dropped at the end. The list is walked by index: a slow
    // consumer's makeRoom may end connections (their teardown comes later, in reapDead).
    pb.frames->retain(uint32_t(n));
    uint32_t queued = 0;
    uint32_t sent = 0;
    // The turn's only pending delivery: a plain connection with nothing queued is written
    // to here, at once (no queue, no second pass in the flush). With several (channels),
    // each connection's are queued and go out in one write.
    const bool direct = pendingBroadcasts_.size() == 1;
    const uint8_t* bytes = pb.frames->data();
    const size_t len = pb.frames->size();
    constexpr size_t kAhead = 8;
    for (size_t i = 0; i < n && i < subscribers->size(); ++i) {
      if (i + kAhead < subscribers->size()) prefetch((*subscribers)[i + kAhead]);
      Connection* c = lookup((*subscribers)[i]);
      // Subscriptions are removed at teardown; a closing connection just gets nothing.
      if (!c || c->state != ConnState::Open) continue;
      size_t off = 0;
      if (direct && c->out.empty() && !c->tls && !c->tlsRecords) {
        const ssize_t w = ::send(c->fd, bytes, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w == ssize_t(len)) {
          ++sent;
          bytesOut += len;
          continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          kill(*c, nullptr);
          continue;
        }
        // What the socket did not take is queued; the flush finds it full and waits.
        if (w > 0) {
          off = size_t(w);
          bytesOut += off;
        }
      } else if (c->out.bytes() > hwm && c->makeRoom(*this) != SendStatus::Ok) {
        continue;
      }
      c->out.appendRetained(pb.frames, off);
      ++queued;
      c->markDirty(*this);
    }
    delivered += uint64_t(queued + sent) * pb.count;
    if (n > queued) pb.frames->drop(uint32_t(n - queued));
    pb.frames->release(&pool_);
  }
  pendingBroadcasts_.clear();
  stats_->add(Counter::MessagesOut, delivered);
  if (bytesOut) stats_->add(Counter::BytesOut, bytesOut);
  if (timed) deliverNs_ += clockNs(CLOCK_MONOTONIC) - started;
  delivering_ = false;
}

void Worker::post(std::function<void()> fn) {
  InboxMessage m;
  m.kind = InboxMessage::Kind::Task;
  m.task = std::move(fn);
  inbox_.push(std::move(m));
}

void Worker::hold(uint64_t handle) {
  Connection* c = lookup(handle);
  if (!c || c->held) return;
  c->held = true;
  if (c->state == ConnState::Open) c->pauseReading(*this);
}

void Worker::release(uint64_t handle) {
  Connection* c = lookup(handle);
  if (!c || !c->held) return;
  c->held = false;
  // What waited is served by the loop, in slices like any backlog (this turn still).
  if (c->hasPending() || c->hasBacklog()) {
    scheduleBacklog(*c);
  } else if (stopping_) {
    closeIfDrained(*c);  // reading stays off while stopping
  } else if (c->state == ConnState::Open) {
    c->resumeReading(*this);
  }
}

void Worker::scheduleBacklog(Connection& c) {
  if (c.backlogged) return;
  c.backlogged = true;
  backlog_.push_back(handleOf(c));
}

void Worker::serveBacklogs() {
  // Connections scheduled while serving go to the emptied backlog_, for the next turn; both
  // vectors keep their storage.
  serving_.swap(backlog_);
  for (uint64_t h : serving_) {
    Connection* c = lookup(h);
    if (!c) continue;
    c->backlogged = false;
    if (c->state != ConnState::Dead) c->serveBacklog(*this);
  }
  serving_.clear();
}

bool ServiceHost::sliceTimeLeft() {
  const uint64_t now = clockNs(CLOCK_MONOTONIC_COARSE);
  if (sliceCalls_ == 2) {
    sliceStartNs_ = now;
    return true;
  }
  if (now - sliceStartNs_ < sliceLimitNs_) return true;
  --sliceCalls_;   // not handed over
  sliceLeft_ = 0;  // the parser stops too: the rest of the read waits in the backlog
  return false;
}

void Worker::closeConnectionsOf(const ServiceInstance* instance, uint16_t code,
                                std::string_view reason) {
  for (Connection* c : slots_) {
    if (c && c->instance == instance && c->state == ConnState::Open) {
      c->held = false;
      if (c->extras) c->extras->pending.clear();
      c->beginClose(*this, code, reason);
    }
  }
}

// --- ServiceHost (core/service-host.h): the service API, as instances see it -------------
// The Worker is its one implementation; these are plain calls into it (send and reaches are
// inlined into them), so a handler's ws:send costs what a direct call did.

SendStatus ServiceHost::send(uint32_t service, uint64_t handle, Opcode op, const uint8_t* data,
                             size_t len) {
  return static_cast<Worker*>(this)->send(service, handle, op, data, len);
}
SendStatus ServiceHost::close(uint32_t service, uint64_t handle, uint16_t code,
                              std::string_view reason) {
  return static_cast<Worker*>(this)->close(service, handle, code, reason);
}
SendStatus ServiceHost::subscribe(uint32_t service, uint64_t channel, uint64_t handle) {
  return static_cast<Worker*>(this)->subscribe(service, channel, handle);
}
SendStatus ServiceHost::unsubscribe(uint32_t service, uint64_t channel, uint64_t handle) {
  return static_cast<Worker*>(this)->unsubscribe(service, channel, handle);
}
bool ServiceHost::reaches(uint32_t service, uint64_t handle) {
  return static_cast<Worker*>(this)->reaches(service, handle);
}
SendStatus ServiceHost::broadcast(uint64_t channel, SharedBuffer* frame) {
  return static_cast<Worker*>(this)->broadcast(channel, frame);
}
void ServiceHost::fail(uint64_t handle) {
  static_cast<Worker*>(this)->fail(handle);
}
void ServiceHost::hold(uint64_t handle) {
  static_cast<Worker*>(this)->hold(handle);
}
void ServiceHost::release(uint64_t handle) {
  static_cast<Worker*>(this)->release(handle);
}
bool ServiceHost::answerConnect(uint32_t service, uint64_t handle, ConnectVerdict&& verdict) {
  return static_cast<Worker*>(this)->answerConnect(service, handle, std::move(verdict));
}
std::shared_ptr<const ConnInfo> ServiceHost::info(uint32_t service, uint64_t handle) {
  return static_cast<Worker*>(this)->info(service, handle);
}
void ServiceHost::closeConnectionsOf(const ServiceInstance* instance, uint16_t code,
                                     std::string_view reason) {
  static_cast<Worker*>(this)->closeConnectionsOf(instance, code, reason);
}

}  // namespace lapps
