// Per-connection protocol handling on the worker: handshake, frames, close handshake,
// writes and teardown. Teardown is always deferred to the end of the event batch, so a
// connection never disappears under a running handler.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <openssl/err.h>

#include "core/server.h"
#include "core/worker.h"
#include "protocol/close-code.h"
#include "protocol/frame-encoder.h"
#include "protocol/handshake-response.h"
#include "protocol/parse-error.h"
#include "security/conn-limiter.h"

namespace lapps {

// Largest reassembly buffer a connection keeps between messages.
constexpr size_t kKeepMessageBuffer = 1 << 20;

// Receives parsed frames for one connection.
struct FrameSink {
  Worker& w;
  Connection& c;

  // The common case stays small enough to inline into the parser: a whole message in one
  // piece is queued by pointer; state is unchanged until the batch is dispatched.
  __attribute__((always_inline)) bool onData(uint8_t* data, size_t len, bool first, bool last,
                                             bool text) {
    if (first && last && c.state == ConnState::Open) [[likely]] {
      // Zero copy: the message points into the read buffer until the batch is dispatched.
      w.batch_.push_back(InboundMessage{data, len, text ? 1 : 2});
      // The connection's share of this loop turn is full: the rest waits (backlog).
      return --w.sliceLeft_ != 0;
    }
    return onDataSlow(data, len, first, last, text);
  }

  __attribute__((noinline)) bool onDataSlow(uint8_t* data, size_t len, bool first, bool last,
                                            bool text) {
    if (c.state != ConnState::Open) {
      // After our close frame, data is read (to reach the peer's close) but not delivered.
      if (last && c.state == ConnState::Closing) w.stats_->add(Counter::MessagesAfterClose);
      return c.state == ConnState::Closing;
    }
    if (first) c.message.clear();
    // Room for the rest of this frame at once (its length is known from the header).
    size_t want = c.message.size() + len + size_t(c.parser.remaining);
    if (want > c.message.capacity()) c.message.reserve(want);
    c.message.append(reinterpret_cast<const char*>(data), len);
    if (last) {
      --w.sliceLeft_;  // at least 1: the parser would have stopped otherwise
      // The reassembly buffer is reused by the next message: dispatch right away.
      w.batch_.push_back(InboundMessage{reinterpret_cast<const uint8_t*>(c.message.data()),
                                        c.message.size(), text ? 1 : 2});
      w.dispatchBatch(c);
      // Keep the buffer for the next message that spans reads (freeing and regrowing it
      // per message costs page faults), unless it is huge.
      if (c.message.capacity() > kKeepMessageBuffer) {
        std::string().swap(c.message);
      } else {
        c.message.clear();
      }
    }
    return c.state == ConnState::Closing || (c.state == ConnState::Open && mayGoOn());
  }

  // Whether an open connection's next message may be handled in this slice: not after a
  // handler suspended (its later messages wait), nor past the slice's end.
  bool mayGoOn() const { return !c.held && w.sliceLeft_ > 0; }

  // Control frames act in stream order: the messages before them are handled first.
  bool onPing(uint8_t* payload, size_t len) {
    w.dispatchBatch(c);
    if (c.state == ConnState::Open) {
      w.queuePong(c, payload, len);
      return mayGoOn();
    }
    return true;
  }

  bool onPong(uint8_t*, size_t) {
    c.pingOutstanding = false;
    return true;
  }

  bool onClose(uint16_t code, const uint8_t*, size_t) {
    w.dispatchBatch(c);
    c.closeReceived = true;
    if (!c.closeSent) {
      // The peer started the close: echo its code (none if it sent none).
      uint8_t payload[2];
      size_t n = 0;
      if (code != 1005) {
        payload[0] = uint8_t(code >> 8);
        payload[1] = uint8_t(code);
        n = 2;
      }
      w.queueClose(c, payload, n);
    }
    // Both close frames are exchanged: the server closes TCP first (RFC 6455 §7.1.1).
    w.finishAndDrain(c);
    return false;
  }

  void onError(ParseError e) {
    w.dispatchBatch(c);
    w.countParseError(e);
    if (c.state == ConnState::Open) {
      uint8_t payload[125];
      size_t n = encodeClosePayload(payload, closeCodeFor(e), describe(e));
      w.queueClose(c, payload, n);
    }
    // The stream cannot be parsed any further: finish our side and drain.
    w.finishAndDrain(c);
  }
};

void Worker::countParseError(ParseError e) {
  stats_->add(Counter::ProtocolErrors);
  if (e == ParseError::MessageTooBig) stats_->add(Counter::MessageTooBig);
  if (e == ParseError::FrameTooBig) stats_->add(Counter::FrameTooBig);
  if (e == ParseError::TooManyFragments) stats_->add(Counter::TooManyFragments);
}

void Worker::onConnectionEvent(uint64_t handle, uint32_t events) {
  Connection* c = lookup(handle);
  if (!c || c->state == ConnState::Dead) return;
  if (events & EPOLLOUT) {
    flush(*c);
    if (c->state == ConnState::Dead) return;
    if (c->tlsWantsWrite && !c->paused) {
      // The TLS handshake (inside SSL_read) was waiting to write: carry on with it.
      c->tlsWantsWrite = false;
      onTlsReadable(*c);
      return;
    }
  }
  if (c->paused) {
    // Not reading while a handler is suspended; a hang-up or error still ends it.
    if (events & (EPOLLHUP | EPOLLERR)) kill(*c, nullptr);
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) onReadable(*c);
}

void Worker::onReadable(Connection& c) {
  if (c.tls) {
    onTlsReadable(c);
    return;
  }
  char* buf;
  size_t cap;
  readTarget(c, buf, cap);
  ssize_t n = cap ? ::recv(c.fd, buf, cap, 0) : 0;
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    kill(c, nullptr);
    return;
  }
  if (n == 0) {
    // EOF: the end of a clean close while draining, an abrupt drop otherwise.
    kill(c, nullptr);
    return;
  }
  onBytesRead(c, buf, size_t(n));
}

void Worker::readTarget(Connection& c, char*& buf, size_t& cap) {
  if (c.state == ConnState::Handshake) {
    // Read straight into the handshake buffer, never past its fixed capacity: bytes
    // beyond it stay in the socket (or the TLS session) until the handshake is done.
    HandshakeData& h = *c.hs;
    buf = h.buf.get() + h.size;
    cap = h.cap - h.size;
  } else {
    buf = reinterpret_cast<char*>(readBuf_.data());
    cap = readBuf_.size();
  }
}

void Worker::onBytesRead(Connection& c, char* buf, size_t n) {
  stats_->add(Counter::BytesIn, n);
  c.lastActivityMs = nowMs_;
  c.pingOutstanding = false;
  switch (c.state) {
    case ConnState::Handshake:
      c.hs->size += n;
      onHandshakeBytes(c, nullptr, 0);
      break;
    case ConnState::Open:
    case ConnState::Closing:
      onFrameBytes(c, reinterpret_cast<uint8_t*>(buf), n);
      break;
    case ConnState::Draining:
    case ConnState::Dead:
      break;
  }
}

void Worker::onTlsReadable(Connection& c) {
  // One record at a time, for as long as the session holds decrypted or buffered bytes:
  // epoll only sees the socket, so nothing may be left inside OpenSSL when we return.
  do {
    char* buf;
    size_t cap;
    readTarget(c, buf, cap);
    if (cap == 0) return;  // a full head was answered with 431 already
    ERR_clear_error();
    const bool established = SSL_is_init_finished(c.tls);
    int n = SSL_read(c.tls, buf, int(std::min<size_t>(cap, INT32_MAX)));
    if (n <= 0) {
      switch (SSL_get_error(c.tls, n)) {
        case SSL_ERROR_WANT_READ:
          return;
        case SSL_ERROR_WANT_WRITE:
          c.tlsWantsWrite = true;
          if (!c.epollOut) setEpoll(c, true);
          return;
        case SSL_ERROR_ZERO_RETURN:  // close_notify: EOF
          kill(c, nullptr);
          return;
        default:
          if (!established) {
            stats_->add(Counter::TlsHandshakesFailed);
            unsigned long e = ERR_peek_last_error();
            char text[256] = "connection closed";
            if (e) ERR_error_string_n(e, text, sizeof text);
            log(LogLevel::Debug, std::string("TLS handshake failed: ") + text);
          }
          kill(c, nullptr);
          return;
      }
    }
    onBytesRead(c, buf, size_t(n));
    // A write that wanted to read (a TLS 1.3 key update) may go on now.
    if (!c.out.empty()) markDirty(c);
  } while (c.tls && c.state != ConnState::Dead && !c.paused && SSL_has_pending(c.tls));
}

void Worker::onHandshakeBytes(Connection& c, const char* data, size_t len) {
  HandshakeData& h = *c.hs;
  if (len) {
    // Bytes handed over by another worker: they fit, it read them into the same capacity.
    size_t take = std::min(len, h.cap - h.size);
    std::memcpy(h.buf.get() + h.size, data, take);
    h.size += take;
  }
  switch (h.parser.parse(h.buf.get(), h.size)) {
    case HandshakeParser::Status::Incomplete:
      if (h.size == h.cap) {
        stats_->add(Counter::HeaderLimit);
        rejectHandshake(c, 431, "request header fields too large");
      }
      return;
    case HandshakeParser::Status::Failed:
      if (h.parser.error() == HandshakeError::HeadersTooLarge ||
          h.parser.error() == HandshakeError::TooManyHeaders) {
        stats_->add(Counter::HeaderLimit);
      }
      rejectHandshake(c, httpStatusFor(h.parser.error()), describe(h.parser.error()));
      return;
    case HandshakeParser::Status::Complete:
      completeHandshake(c);
      return;
  }
}

void Worker::completeHandshake(Connection& c) {
  HandshakeData& h = *c.hs;
  const HandshakeRequest& req = h.parser.request();
  const ServiceRuntime* svc = server_.route(req.target);
  if (!svc) {
    rejectHandshake(c, 404, "no service at this path");
    return;
  }
  // Checked before any hand-over or 101: a refused client never sees a WebSocket.
  if (h.instance < 0 && svc->settings.index < policy_->services.size()) {
    const ServicePolicy& sp = policy_->services[svc->settings.index];
    if (sp.acl && !sp.acl->allows(&c.peer.sa)) {
      stats_->add(Counter::AclRefusedAtHandshake);
      rejectHandshake(c, 403, "forbidden");
      return;
    }
    if (!sp.origin.allows(req.origin, req.host, c.tls != nullptr)) {
      stats_->add(Counter::OriginRefused);
      rejectHandshake(c, 403, "origin not allowed");
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
    m.peer = c.peer;
    m.bytes.assign(h.buf.get(), h.size);
    m.counted = c.counted;
    m.tls = c.tls;
    m.tlsContext = std::move(c.tlsContext);
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
    c.fd = -1;  // no longer ours: teardown must not close it, free its TLS or uncount it
    c.tls = nullptr;
    c.counted = false;
    kill(c, nullptr);
    server_.worker(owner).inbox().push(std::move(m));
    return;
  }

  std::string response;
  const ServiceSettings& ss = svc->settings;
  appendSwitchingProtocols(response, req.key, selectSubprotocol(req.protocols, ss.subprotocols),
                           ss.extraHeaderLines);
  c.out.append(pool_, reinterpret_cast<const uint8_t*>(response.data()), response.size());
  c.service = svc;
  c.instance = svc->instances[size_t(inst)].get();
  c.state = ConnState::Open;
  c.opened = true;
  directory_.publish(c.slot, c.generation, svc->settings.index);
  stats_->add(Counter::HandshakesOk);
  markDirty(c);
  scheduleActivityTimer(c);

  // Bytes that followed the request belong to the WebSocket stream.
  std::unique_ptr<HandshakeData> hs = std::move(c.hs);
  size_t used = req.headerBytes;
  if (hs->size > used) {
    onFrameBytes(c, reinterpret_cast<uint8_t*>(hs->buf.get()) + used, hs->size - used);
  }
}

void Worker::rejectHandshake(Connection& c, int status, std::string_view body) {
  stats_->add(Counter::HandshakesFailed);
  std::string response;
  appendHttpError(response, status, body);
  c.out.append(pool_, reinterpret_cast<const uint8_t*>(response.data()), response.size());
  c.hs.reset();
  finishAndDrain(c);
}

void Worker::finishAndDrain(Connection& c) {
  c.state = ConnState::Draining;
  c.finAfterFlush = true;
  markDirty(c);
  armTimer(c, nowMs_ + server_.settings().closeTimeoutMs);
}

void Worker::onFrameBytes(Connection& c, uint8_t* data, size_t len) {
  if (c.backlogOff < c.backlog.size()) [[unlikely]] {
    // Read while unparsed bytes wait (the last read of a stop): they go behind them.
    c.backlog.erase(0, c.backlogOff);
    c.backlog.append(reinterpret_cast<const char*>(data), len);
    c.backlogOff = 0;
    return;
  }
  startSlice(c.instance->sliceMessages());
  // parseSlice's body, inlined here: the read path is the hot one.
  FrameSink sink{*this, c};
  size_t used = parseFrames(c.parser, c.service->limits, data, len, sink);
  dispatchBatch(c);
  // The slice ended (or a handler suspended) before all of it was handled.
  if (used < len || !c.pending.empty()) keepBacklog(c, data + used, len - used);
}

size_t Worker::parseSlice(Connection& c, uint8_t* data, size_t len) {
  FrameSink sink{*this, c};
  size_t used = parseFrames(c.parser, c.service->limits, data, len, sink);
  dispatchBatch(c);
  return used;
}

void Worker::keepBacklog(Connection& c, const uint8_t* data, size_t len) {
  // Past a close frame or a protocol error nothing more is parsed: the rest is dropped.
  if ((c.state != ConnState::Open && c.state != ConnState::Closing) || c.parser.failed()) return;
  c.backlog.assign(reinterpret_cast<const char*>(data), len);
  c.backlogOff = 0;
  pauseReading(c);
  if (!c.held || c.state != ConnState::Open) scheduleBacklog(c);
}

void Worker::dispatchBatch(Connection& c) {
  if (batch_.empty()) return;
  stats_->add(Counter::MessagesIn, batch_.size());
  size_t next = 0;
  if (!c.held) {
    // Most sends go to the connection whose messages are being handled: skip their lookup.
    dispatching_ = &c;
    dispatchingHandle_ = handleOf(c);
    MessageBatch batch{dispatchingHandle_, batch_.data(), batch_.size(), 0, &c.state};
    c.instance->onMessages(batch);
    dispatching_ = nullptr;
    dispatchingHandle_ = 0;
    next = batch.next;
  }
  if (next < batch_.size() && c.state == ConnState::Open) {
    // A handler suspended, or the slice is spent: what the handlers have not seen yet waits,
    // in order (for the handler's return, or the next loop turn).
    for (size_t i = next; i < batch_.size(); ++i) {
      const InboundMessage& m = batch_[i];
      c.pending.push_back({std::string(reinterpret_cast<const char*>(m.data), m.len), m.opcode});
    }
  }
  batch_.clear();
}

void Worker::fail(uint64_t handle) {
  Connection* c = lookup(handle);
  if (!c || c->state != ConnState::Open) return;
  stats_->add(Counter::ServiceErrors);
  beginClose(*c, 1011, "internal error");
}

void Worker::beginClose(Connection& c, uint16_t code, std::string_view reason) {
  if (c.state != ConnState::Open) return;
  if (c.backlogOff < c.backlog.size() || !c.pending.empty()) {
    // The peer's close frame may be among the bytes read already: they are parsed first
    // (serveBacklog also drops the messages that waited, and then reads again).
    scheduleBacklog(c);
  } else if (c.paused) {
    // Reading again: the peer's close frame must be seen.
    c.paused = false;
    setEpoll(c, c.epollOut);
  }
  uint8_t payload[125];
  size_t n = encodeClosePayload(payload, code, reason);
  queueClose(c, payload, n);
  c.state = ConnState::Closing;
  armTimer(c, nowMs_ + server_.settings().closeTimeoutMs);
}

void Worker::queueFrame(Connection& c, Opcode op, const uint8_t* data, size_t len) {
  uint8_t header[kMaxHeaderSize];
  const uint32_t frag = server_.settings().autoFragmentSize;
  if (frag && len > frag && (op == Opcode::Text || op == Opcode::Binary)) {
    for (size_t off = 0; off < len; off += frag) {
      size_t chunk = std::min<size_t>(frag, len - off);
      bool last = off + chunk == len;
      size_t h = encodeHeader(header, off == 0 ? op : Opcode::Continuation, chunk, last);
      uint8_t* dst = c.out.append(pool_, h + chunk);
      std::memcpy(dst, header, h);
      std::memcpy(dst + h, data + off, chunk);
    }
  } else if (len < 126) {
    // Small frame (the common case): a 2-byte header written in place.
    uint8_t* dst = c.out.append(pool_, 2 + len);
    dst[0] = uint8_t(0x80 | uint8_t(op));
    dst[1] = uint8_t(len);
    if (len) std::memcpy(dst + 2, data, len);
  } else {
    size_t h = encodeHeader(header, op, len, true);
    uint8_t* dst = c.out.append(pool_, h + len);
    std::memcpy(dst, header, h);
    if (len) std::memcpy(dst + h, data, len);
  }
  markDirty(c);
}

void Worker::queueClose(Connection& c, const uint8_t* payload, size_t len) {
  takePendingPong(c);
  queueFrame(c, Opcode::Close, payload, len);
  c.closeSent = true;
}

void Worker::queuePong(Connection& c, const uint8_t* payload, size_t len) {
  if (!c.epollOut || c.out.empty()) {
    // The client reads: every ping gets its pong, in order.
    queueFrame(c, Opcode::Pong, payload, len);
    return;
  }
  // The socket took less than we had: only the newest ping is answered, when the queue ahead
  // of its pong has been written (flush). len <= 125: the parser refuses longer control frames.
  if (!c.pong) c.pong = std::make_unique<uint8_t[]>(125);
  std::memcpy(c.pong.get(), payload, len);
  c.pongLen = uint8_t(len);
  c.pongPending = true;
}

void Worker::queuePendingPong(Connection& c) {
  c.pongPending = false;
  uint8_t* dst = c.out.append(pool_, 2 + c.pongLen);
  dst[0] = uint8_t(0x80 | uint8_t(Opcode::Pong));
  dst[1] = c.pongLen;
  std::memcpy(dst + 2, c.pong.get(), c.pongLen);
}

void Worker::writeThrough(Connection& c, Opcode op, const uint8_t* data, size_t len) {
  uint8_t header[kMaxHeaderSize];
  size_t h = encodeHeader(header, op, len, true);
  iovec iov[2] = {{header, h}, {const_cast<uint8_t*>(data), len}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  ssize_t n = ::sendmsg(c.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      kill(c, nullptr);
      return;
    }
    n = 0;
  }
  stats_->add(Counter::BytesOut, uint64_t(n));
  size_t sent = size_t(n);
  if (sent == h + len) return;
  uint8_t* dst = c.out.append(pool_, h + len - sent);
  if (sent < h) {
    std::memcpy(dst, header + sent, h - sent);
    std::memcpy(dst + h - sent, data, len);
  } else {
    std::memcpy(dst, data + (sent - h), len - (sent - h));
  }
  markDirty(c);  // the flush meets EAGAIN and arms EPOLLOUT
}

void Worker::markDirty(Connection& c) {
  if (c.dirty) return;
  c.dirty = true;
  dirtyList_.push_back(handleOf(c));
}

void Worker::setEpoll(Connection& c, bool wantWrite) {
  epoll_event ev{};
  // While paused nothing is read, so EPOLLRDHUP (level-triggered) would only spin.
  ev.events =
      (c.paused ? 0u : uint32_t(EPOLLIN | EPOLLRDHUP)) | (wantWrite ? uint32_t(EPOLLOUT) : 0u);
  ev.data.u64 = handleOf(c);
  ::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
  c.epollOut = wantWrite;
}

void Worker::flushTls(Connection& c) {
  constexpr size_t kStage = 16 * 1024;  // one full TLS record
  while (!c.out.empty()) {
    iovec iov[64] = {};
    int cnt = c.out.gather(iov, 64);
    const void* data = iov[0].iov_base;
    size_t len = iov[0].iov_len;
    if (len < kStage && cnt > 1) {
      // Many small frames: one record instead of one per frame. A retry after WANT_WRITE
      // gathers the same leading bytes again, at least as many, as OpenSSL requires.
      if (!tlsStage_) tlsStage_.reset(new uint8_t[kStage]);
      len = 0;
      for (int i = 0; i < cnt && len < kStage; ++i) {
        size_t take = std::min(iov[i].iov_len, kStage - len);
        std::memcpy(tlsStage_.get() + len, iov[i].iov_base, take);
        len += take;
      }
      data = tlsStage_.get();
    }
    ERR_clear_error();
    int n = SSL_write(c.tls, data, int(std::min<size_t>(len, INT32_MAX)));
    if (n <= 0) {
      int err = SSL_get_error(c.tls, n);
      if (err == SSL_ERROR_WANT_WRITE) {
        writeBlocked(c);
        return;
      }
      if (err == SSL_ERROR_WANT_READ) return;  // the next read event marks it dirty again
      kill(c, nullptr);
      return;
    }
    stats_->add(Counter::BytesOut, uint64_t(n));
    c.out.consume(pool_, size_t(n));
    c.writeProgressMs = nowMs_;
    if (c.out.empty() && !c.closeSent) takePendingPong(c);
  }
  c.overMarkSinceMs = 0;
  if (c.epollOut && !c.tlsWantsWrite) setEpoll(c, false);
  if (c.finAfterFlush) {
    c.finAfterFlush = false;
    SSL_shutdown(c.tls);  // close_notify; the peer's is not awaited
    ::shutdown(c.fd, SHUT_WR);
  }
}

void Worker::flush(Connection& c) {
  if (c.tls) {
    flushTls(c);
    return;
  }
  while (!c.out.empty()) {
    iovec iov[64];
    int cnt = c.out.gather(iov, 64);
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = size_t(cnt);
    ssize_t n = ::sendmsg(c.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        writeBlocked(c);
        return;
      }
      kill(c, nullptr);
      return;
    }
    stats_->add(Counter::BytesOut, uint64_t(n));
    c.out.consume(pool_, size_t(n));
    c.writeProgressMs = nowMs_;
    if (c.out.empty() && !c.closeSent) takePendingPong(c);
  }
  c.overMarkSinceMs = 0;
  if (c.epollOut) setEpoll(c, false);
  if (c.finAfterFlush) {
    c.finAfterFlush = false;
    ::shutdown(c.fd, SHUT_WR);
  }
}

void Worker::writeBlocked(Connection& c) {
  if (!c.epollOut) {
    setEpoll(c, true);
    // The client is judged from the moment it stops taking bytes.
    c.writeProgressMs = nowMs_;
  }
  const Settings& s = server_.settings();
  if (c.out.bytes() <= s.outboundHighWaterMark) {
    c.overMarkSinceMs = 0;
  } else if (c.overMarkSinceMs == 0) {
    c.overMarkSinceMs = nowMs_;
  }
  if (c.outboundDeadlineMs == 0 && s.slowConsumerTimeoutMs && c.state == ConnState::Open) {
    c.outboundDeadlineMs = nowMs_ + s.slowConsumerTimeoutMs;
    timers_.push(TimerEntry{c.outboundDeadlineMs, handleOf(c), true});
  }
}

SendStatus Worker::makeRoom(Connection& c) {
  flush(c);
  if (c.state == ConnState::Dead) return SendStatus::NoConnection;  // the write failed
  if (c.out.bytes() <= server_.settings().maxOutboundQueue) return SendStatus::Ok;
  closeSlowConsumer(c, "slow consumer: outbound queue over max_outbound_queue_size");
  return SendStatus::SlowConsumer;
}

void Worker::checkSlowConsumer(Connection& c) {
  c.outboundDeadlineMs = 0;
  // Judged only while a write would block: a queue that merely waits for this turn's flush
  // is not slow. Closing connections are bounded by close_timeout_ms instead.
  if (c.state != ConnState::Open || !c.epollOut || c.out.empty()) return;
  const uint64_t limit = server_.settings().slowConsumerTimeoutMs;
  if (nowMs_ - c.writeProgressMs >= limit) {
    closeSlowConsumer(c, "slow consumer: no outbound progress for slow_consumer_timeout_ms");
    return;
  }
  if (c.overMarkSinceMs && nowMs_ - c.overMarkSinceMs >= limit) {
    closeSlowConsumer(c, "slow consumer: outbound queue above the high-water mark for too long");
    return;
  }
  uint64_t next = c.writeProgressMs + limit;
  if (c.overMarkSinceMs) next = std::min(next, c.overMarkSinceMs + limit);
  c.outboundDeadlineMs = next;
  timers_.push(TimerEntry{next, handleOf(c), true});
}

void Worker::closeSlowConsumer(Connection& c, const char* why) {
  // It does not read, so a close frame would not reach it either: drop it.
  stats_->add(Counter::SlowConsumers);
  kill(c, why);
}

void Worker::flushDirty() {
  std::vector<uint64_t> batch;
  batch.swap(dirtyList_);
  for (uint64_t h : batch) {
    Connection* c = lookup(h);
    if (!c || c->state == ConnState::Dead) continue;
    c->dirty = false;
    flush(*c);
  }
  // Reuse the vector's storage next time.
  if (dirtyList_.empty()) {
    batch.clear();
    dirtyList_.swap(batch);
  }
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
  if (c.tls) {
    SSL_free(c.tls);
    c.tls = nullptr;
  }
  c.tlsContext.reset();
  if (c.counted) server_.limiter().release(&c.peer.sa);
  if (c.fd >= 0) ::close(c.fd);  // also removes it from the epoll set
  c.fd = -1;
  if (c.opened) {
    c.opened = false;
    c.instance->onDisconnect(handleOf(c));
  }
  if (!c.channels.empty()) dropSubscriptions(c);
  c.out.clear(&pool_);
  slots_[c.slot] = nullptr;
  freeSlots_.push_back(c.slot);
  --liveConnections_;
  stats_->sub(Counter::ConnectionsOpen);
  delete &c;
}

}  // namespace lapps
