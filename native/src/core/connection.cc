// A connection's behaviour: handshake, frames, close handshake and writes, over its
// transport (core/transport.h). Teardown belongs to the worker and is always deferred to
// the end of the event batch, so a connection never disappears under a running handler.
#include "core/connection.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/server.h"
#include "core/transport.h"
#include "core/worker.h"
#include "io/clock.h"
#include "protocol/close-code.h"
#include "protocol/frame-encoder.h"
#include "protocol/handshake-response.h"
#include "protocol/parse-error.h"

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
    std::string& message = c.extra().message;
    if (first) message.clear();
    // Room for the rest of this frame at once (its length is known from the header).
    const FrameParserState& st = c.parser ? *c.parser : w.restParser_;  // the one parsing
    size_t want = message.size() + len + size_t(st.remaining);
    if (want > message.capacity()) message.reserve(want);
    message.append(reinterpret_cast<const char*>(data), len);
    if (last) {
      --w.sliceLeft_;  // at least 1: the parser would have stopped otherwise
      // The reassembly buffer is reused by the next message: dispatch right away.
      w.batch_.push_back(InboundMessage{reinterpret_cast<const uint8_t*>(message.data()),
                                        message.size(), text ? 1 : 2});
      w.dispatchBatch(c);
      // Keep the buffer for the next message that spans reads (freeing and regrowing it
      // per message costs page faults), unless it is huge. (A handler may not free the
      // extras: they live as long as the connection, short of a quiet-time release.)
      if (message.capacity() > kKeepMessageBuffer) {
        std::string().swap(message);
      } else {
        message.clear();
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
      c.queuePong(w, payload, len);
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
      c.queueClose(w, payload, n);
    }
    // Both close frames are exchanged: the server closes TCP first (RFC 6455 §7.1.1).
    c.finishAndDrain(w);
    return false;
  }

  void onError(ParseError e) {
    w.dispatchBatch(c);
    w.countParseError(e);
    if (c.state == ConnState::Open) {
      uint8_t payload[125];
      size_t n = encodeClosePayload(payload, closeCodeFor(e), describe(e));
      c.queueClose(w, payload, n);
    }
    // The stream cannot be parsed any further: finish our side and drain.
    c.finishAndDrain(w);
  }
};

void Connection::onEvent(Worker& w, uint32_t events) {
  // The one choice of transport for this event: everything below is instantiated per
  // transport.
  if (tlsRecords) {
    onEvent<RecordTransport>(w, events);
  } else if (tls) {
    onEvent<TlsTransport>(w, events);
  } else {
    onEvent<PlainTransport>(w, events);
  }
}

template <class T>
void Connection::onEvent(Worker& w, uint32_t events) {
  if (events & EPOLLOUT) {
    flush<T>(w);
    if (state == ConnState::Dead) return;
    if (T::readWantsWrite(*this) && !paused) {
      // The TLS handshake (inside SSL_read) was waiting to write: carry on with it.
      tlsWantsWrite = false;
      T::onReadable(*this, w);
      return;
    }
  }
  if (paused) {
    // Not reading while a handler is suspended; a hang-up or error still ends it.
    if (events & (EPOLLHUP | EPOLLERR)) w.kill(*this, nullptr);
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) T::onReadable(*this, w);
}

void Connection::readAgain(Worker& w) {
  if (tls) TlsTransport::onReadable(*this, w);
}

bool Connection::hasBufferedInput() const {
  return tls && TlsTransport::hasBufferedInput(*this);
}

bool Connection::inTlsHandshake() const {
  return tls && !SSL_is_init_finished(tls);
}

void Connection::readBeforeStop(Worker& w) {
  if (tlsRecords) {
    readBeforeStop<RecordTransport>(w);
  } else if (tls) {
    readBeforeStop<TlsTransport>(w);
  } else {
    readBeforeStop<PlainTransport>(w);
  }
}

template <class T>
void Connection::readBeforeStop(Worker& w) {
  int queued = 0;
  if (::ioctl(fd, FIONREAD, &queued) != 0) queued = 0;
  if (queued <= 0 && !T::hasBufferedInput(*this)) return;
  // Each round reads up to the read buffer (plain) or at least one TLS record: enough
  // rounds for what is queued now.
  size_t rounds = size_t(queued) / T::roundBytes(w) + 2;
  while (rounds-- > 0) {
    T::onReadable(*this, w);
    if (state != ConnState::Open) return;
    if (T::hasBufferedInput(*this)) continue;
    char byte;
    if (::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) return;
  }
}

void Connection::readTarget(Worker& w, char*& buf, size_t& cap) {
  if (state == ConnState::Handshake) {
    // Read straight into the handshake buffer, never past its fixed capacity: bytes
    // beyond it stay in the socket (or the TLS session) until the handshake is done.
    HandshakeData& h = *hs;
    buf = h.buf.get() + h.size;
    cap = h.cap - h.size;
  } else {
    buf = reinterpret_cast<char*>(w.readBuf_.data());
    cap = w.readBuf_.size();
  }
}

void Connection::onBytesRead(Worker& w, char* buf, size_t n) {
  w.stats_->add(Counter::BytesIn, n);
  lastActivityMs = w.nowMs_;
  pingOutstanding = false;
  switch (state) {
    case ConnState::Handshake:
      hs->size += n;
      if (hs->waiting) [[unlikely]] {
        // onConnect is deciding: the bytes wait behind the request (they are frames).
        if (hs->size == hs->cap) pauseReading(w);
        break;
      }
      onHandshakeBytes(w, nullptr, 0);
      break;
    case ConnState::Open:
    case ConnState::Closing:
      onFrameBytes(w, reinterpret_cast<uint8_t*>(buf), n);
      break;
    case ConnState::Draining:
    case ConnState::Dead:
    case ConnState::ProxyHeader:  // read by the worker, never through the transport
      break;
  }
}

void Connection::onHandshakeBytes(Worker& w, const char* data, size_t len) {
  HandshakeData& h = *hs;
  if (len) {
    // Bytes handed over by another worker: they fit, it read them into the same capacity.
    size_t take = std::min(len, h.cap - h.size);
    std::memcpy(h.buf.get() + h.size, data, take);
    h.size += take;
  }
  switch (h.parser.parse(h.buf.get(), h.size)) {
    case HandshakeParser::Status::Incomplete:
      if (h.size == h.cap) {
        w.stats_->add(Counter::HeaderLimit);
        rejectHandshake(w, 431, "request header fields too large");
      }
      return;
    case HandshakeParser::Status::Failed:
      if (h.parser.error() == HandshakeError::HeadersTooLarge ||
          h.parser.error() == HandshakeError::TooManyHeaders) {
        w.stats_->add(Counter::HeaderLimit);
      }
      rejectHandshake(w, httpStatusFor(h.parser.error()), describe(h.parser.error()));
      return;
    case HandshakeParser::Status::Complete:
      w.completeHandshake(*this);
      return;
  }
}

void Connection::open(Worker& w, const ServiceRuntime* svc, int32_t inst, UserValue user) {
  const HandshakeRequest& req = hs->parser.request();
  std::string response;
  const ServiceSettings& ss = svc->settings;
  appendSwitchingProtocols(response, req.key, selectSubprotocol(req.protocols, ss.subprotocols),
                           ss.extraHeaderLines);
  out.append(w.pool_, reinterpret_cast<const uint8_t*>(response.data()), response.size());
  instance = svc->instances[size_t(inst)].get();
  state = ConnState::Open;
  opened = true;
  w.directory_.publish(slot, generation, svc->settings.index);
  {
    ConnInfo info;
    info.peer = hs->peer;
    info.target.assign(req.target);
    size_t q = req.target.find('?');
    info.pathLen = uint32_t(q == std::string_view::npos ? req.target.size() : q);
    info.service = svc->settings.index;
    info.user = std::move(user);
    w.infos_.publish(slot, generation, std::move(info));
  }
  w.stats_->add(Counter::HandshakesOk);
  if (w.accessLog_) [[unlikely]]
    w.logHandshake(*this, 101, {});
  w.scheduleActivityTimer(*this);
  // Written now, not at the end of the batch: a fresh socket takes it whole, so the queue
  // gives its storage back at once and an idle connection keeps none (docs/memory.md).
  flush(w);
  if (state == ConnState::Dead) return;  // the write failed
  if (out.empty()) out.clear(&w.pool_);

  // Bytes that followed the request belong to the WebSocket stream.
  std::unique_ptr<HandshakeData> h = std::move(hs);
  w.handshakeBytesFreed_ += sizeof(HandshakeData) + h->cap;
  size_t used = req.headerBytes;
  if (h->size > used) {
    onFrameBytes(w, reinterpret_cast<uint8_t*>(h->buf.get()) + used, h->size - used);
  }
}

void Connection::rejectHandshake(Worker& w, int status, std::string_view body) {
  w.stats_->add(Counter::HandshakesFailed);
  std::string response;
  appendHttpError(response, status, body);
  out.append(w.pool_, reinterpret_cast<const uint8_t*>(response.data()), response.size());
  if (w.accessLog_) [[unlikely]]
    w.logHandshake(*this, status, body);
  // The request's buffer goes; the rest stays until teardown, which gives the client's
  // address back to the limiter (hs->peer).
  hs->buf.reset();
  w.handshakeBytesFreed_ += hs->cap;
  hs->cap = 0;
  hs->size = 0;
  finishAndDrain(w);
}

void Connection::finishAndDrain(Worker& w) {
  state = ConnState::Draining;
  finAfterFlush = true;
  markDirty(w);
  w.armTimer(*this, w.nowMs_ + w.server_.settings().closeTimeoutMs);
}

void Connection::onFrameBytes(Worker& w, uint8_t* data, size_t len) {
  // One test for the two rare cases: bytes in the backlog, a parser state of its own.
  if (leftover && hasBacklog()) [[unlikely]] {
    // Read while unparsed bytes wait (the last read of a stop): they go behind them.
    ConnectionExtras& x = *extras;
    x.backlog.erase(0, x.backlogOff);
    x.backlog.append(reinterpret_cast<const char*>(data), len);
    x.backlogOff = 0;
    return;
  }
  w.startSlice(instance->sliceMessages());
  size_t used;
  if (!leftover || !parser) [[likely]] {
    // parseSlice's body, inlined here: the read path is the hot one. The connection is at
    // rest and parses with the worker's state, which is at rest whenever no parse runs (a
    // state left mid-frame goes to its connection below): the compiler may take the
    // parser's first checks of a pending frame or error as done.
    FrameParserState& st = w.restParser_;
    if (st.failed() || st.inPayload || st.headerFill || st.message != Opcode::Continuation)
      __builtin_unreachable();
    FrameSink sink{w, *this};
    used = parseFrames(st, instance->limits(), data, len, sink);
    if (!st.atRest()) [[unlikely]]
      keepParser(w);
  } else {
    used = parseRead(w, data, len);
  }
  w.dispatchBatch(*this);
  // The slice ended (or a handler suspended) before all of it was handled.
  if (used < len || hasPending()) keepBacklog(w, data + used, len - used);
}

size_t Connection::parseSlice(Worker& w, uint8_t* data, size_t len) {
  size_t used = parseRead(w, data, len);
  w.dispatchBatch(*this);
  return used;
}

size_t Connection::parseRead(Worker& w, uint8_t* data, size_t len) {
  FrameParserState& st = parser ? *parser : w.restParser_;
  FrameSink sink{w, *this};
  size_t used = parseFrames(st, instance->limits(), data, len, sink);
  if (!parser) {
    if (!w.restParser_.atRest()) keepParser(w);
  } else if (parser->atRest()) {
    dropParser(w);
  }
  return used;
}

void Connection::keepParser(Worker& w) {
  // The worker's state, left mid-frame, becomes this connection's (a spare one if any);
  // the worker's is at rest again for the next connection.
  if (w.spareParsers_.empty()) {
    parser = std::make_unique<FrameParserState>(w.restParser_);
  } else {
    parser = std::move(w.spareParsers_.back());
    w.spareParsers_.pop_back();
    *parser = w.restParser_;
  }
  w.restParser_ = FrameParserState{};
  leftover = true;
}

void Connection::dropParser(Worker& w) {
  if (w.spareParsers_.size() < Worker::kSpareParsers) w.spareParsers_.push_back(std::move(parser));
  parser.reset();
  leftover = extras && !extras->backlog.empty();
}

void Connection::keepBacklog(Worker& w, const uint8_t* data, size_t len) {
  // Past a close frame or a protocol error nothing more is parsed: the rest is dropped.
  if ((state != ConnState::Open && state != ConnState::Closing) || parserFailed()) return;
  ConnectionExtras& x = extra();
  if (x.backlog.capacity() < len) w.lendString(x.backlog, len);
  x.backlog.assign(reinterpret_cast<const char*>(data), len);
  x.backlogOff = 0;
  leftover = true;
  pauseReading(w);
  if (!held || state != ConnState::Open) w.scheduleBacklog(*this);
}

void Connection::dropBacklog(Worker& w) {
  if (extras) {
    w.recycle(extras->backlog);
    extras->backlogOff = 0;
  }
  leftover = parser != nullptr;
}

void Connection::serveBacklog(Worker& w) {
  lastActivityMs = w.nowMs_;  // busy with what it sent: not idle
  const uint64_t handle = w.handleOf(*this);
  const uint64_t started = clockNs(CLOCK_MONOTONIC);
  const uint32_t quota = instance->sliceMessages();
  w.startSlice(quota);
  // Served only with something waiting, which lives in the extras. (A handler may not free
  // them: they live as long as the connection.)
  ConnectionExtras& x = extra();
  PendingQueue& pending = x.pending;
  // What a suspended handler held back (or a spent slice left) comes first, one call each.
  while (!pending.empty() && !held && state == ConnState::Open && w.sliceLeft_ > 0) {
    --w.sliceLeft_;
    // Moved out first: a handler may get the connection closed, which clears pending.
    PendingMessage m = std::move(pending.front());
    pending.pop_front();
    InboundMessage item{reinterpret_cast<const uint8_t*>(m.data.data()), m.data.size(), m.opcode};
    MessageBatch batch{handle, &item, 1, 0, &state};
    w.dispatching_ = this;
    w.dispatchingHandle_ = handle;
    instance->onMessages(batch);
    w.dispatching_ = nullptr;
    w.dispatchingHandle_ = 0;
    if (batch.next == 0 && state == ConnState::Open && !held) {
      pending.push_front(std::move(m));  // not taken (the slice is spent): first in line
      break;
    }
  }
  if (state != ConnState::Open) pending.clear();
  // Then the bytes not parsed yet. While closing, they are read for the peer's close frame.
  const bool isOpen = state == ConnState::Open;
  if (pending.empty() && (state == ConnState::Closing || (isOpen && !held && w.sliceLeft_)) &&
      x.backlogOff < x.backlog.size()) {
    uint8_t* data = reinterpret_cast<uint8_t*>(x.backlog.data());
    x.backlogOff += parseSlice(w, data + x.backlogOff, x.backlog.size() - x.backlogOff);
  }
  // Measured per slice, not per message: the next slice of this instance's connections
  // takes about Worker::sliceNs_.
  const uint64_t done = w.sliceCalls_;
  const uint64_t ns = clockNs(CLOCK_MONOTONIC) - started;
  if (done && ns > w.sliceNs_) {
    instance->setSliceMessages(uint32_t(std::max<uint64_t>(1, done * w.sliceNs_ / ns)));
  } else if (done >= quota && ns < w.sliceNs_ / 2) {
    instance->setSliceMessages(std::min(Worker::kMaxSliceMessages, quota * 2));
  }

  if ((state != ConnState::Open && state != ConnState::Closing) || parserFailed()) {
    // Nothing more is parsed: drop what waited; a draining connection reads to EOF.
    dropBacklog(w);
    pending.clear();
    if (state == ConnState::Draining) resumeReading(w);
    return;
  }
  if (pending.empty() && x.backlogOff == x.backlog.size()) {
    dropBacklog(w);
    if (w.stopping_ && state == ConnState::Open) {
      // Reading stays off: the connection closes once what it sent has been handled.
      w.closeIfDrained(*this);
      return;
    }
    if (!held || state != ConnState::Open) resumeReading(w);
    return;
  }
  // More next turn; a suspended handler's release() schedules it again.
  if (!held || state != ConnState::Open) w.scheduleBacklog(*this);
}

// The worker's door from the parser to the services, here with the read path so that
// it is compiled (and inlined) with it.
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
      c.extra().pending.push_back(
          {std::string(reinterpret_cast<const char*>(m.data), m.len), m.opcode});
    }
  }
  batch_.clear();
}

void Connection::beginClose(Worker& w, uint16_t code, std::string_view reason) {
  if (state != ConnState::Open) return;
  if (hasBacklog() || hasPending()) {
    // The peer's close frame may be among the bytes read already: they are parsed first
    // (serveBacklog also drops the messages that waited, and then reads again).
    w.scheduleBacklog(*this);
  } else if (paused) {
    // Reading again: the peer's close frame must be seen.
    paused = false;
    setEpoll(w, epollOut);
  }
  uint8_t payload[125];
  size_t n = encodeClosePayload(payload, code, reason);
  queueClose(w, payload, n);
  state = ConnState::Closing;
  w.armTimer(*this, w.nowMs_ + w.server_.settings().closeTimeoutMs);
}

void Connection::queueFrame(Worker& w, Opcode op, const uint8_t* data, size_t len) {
  uint8_t header[kMaxHeaderSize];
  const uint32_t frag = w.server_.settings().autoFragmentSize;
  if (frag && len > frag && (op == Opcode::Text || op == Opcode::Binary)) {
    for (size_t off = 0; off < len; off += frag) {
      size_t chunk = std::min<size_t>(frag, len - off);
      bool last = off + chunk == len;
      size_t h = encodeHeader(header, off == 0 ? op : Opcode::Continuation, chunk, last);
      uint8_t* dst = out.append(w.pool_, h + chunk);
      std::memcpy(dst, header, h);
      std::memcpy(dst + h, data + off, chunk);
    }
  } else if (len < 126) {
    // Small frame (the common case): a 2-byte header written in place.
    uint8_t* dst = out.append(w.pool_, 2 + len);
    dst[0] = uint8_t(0x80 | uint8_t(op));
    dst[1] = uint8_t(len);
    if (len) std::memcpy(dst + 2, data, len);
  } else {
    size_t h = encodeHeader(header, op, len, true);
    uint8_t* dst = out.append(w.pool_, h + len);
    std::memcpy(dst, header, h);
    if (len) std::memcpy(dst + h, data, len);
  }
  markDirty(w);
}

void Connection::queueClose(Worker& w, const uint8_t* payload, size_t len) {
  takePendingPong(w);
  queueFrame(w, Opcode::Close, payload, len);
  closeSent = true;
}

void Connection::queuePong(Worker& w, const uint8_t* payload, size_t len) {
  if (!epollOut || out.empty()) {
    // The client reads: every ping gets its pong, in order.
    queueFrame(w, Opcode::Pong, payload, len);
    return;
  }
  // The socket took less than we had: only the newest ping is answered, when the queue ahead
  // of its pong has been written (flush). len <= 125: the parser refuses longer control frames.
  ConnectionExtras& x = extra();
  if (!x.pong) x.pong = std::make_unique<uint8_t[]>(125);
  std::memcpy(x.pong.get(), payload, len);
  x.pongLen = uint8_t(len);
  pongPending = true;
}

void Connection::queuePendingPong(Worker& w) {
  pongPending = false;
  const ConnectionExtras& x = *extras;
  uint8_t* dst = out.append(w.pool_, 2 + x.pongLen);
  dst[0] = uint8_t(0x80 | uint8_t(Opcode::Pong));
  dst[1] = x.pongLen;
  std::memcpy(dst + 2, x.pong.get(), x.pongLen);
}

void Connection::writeThrough(Worker& w, Opcode op, const uint8_t* data, size_t len) {
  uint8_t header[kMaxHeaderSize];
  size_t h = encodeHeader(header, op, len, true);
  iovec iov[2] = {{header, h}, {const_cast<uint8_t*>(data), len}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      w.kill(*this, nullptr);
      return;
    }
    n = 0;
  }
  w.stats_->add(Counter::BytesOut, uint64_t(n));
  size_t sent = size_t(n);
  if (sent == h + len) return;
  uint8_t* dst = out.append(w.pool_, h + len - sent);
  if (sent < h) {
    std::memcpy(dst, header + sent, h - sent);
    std::memcpy(dst + h - sent, data, len);
  } else {
    std::memcpy(dst, data + (sent - h), len - (sent - h));
  }
  markDirty(w);  // the flush meets EAGAIN and arms EPOLLOUT
}

void Connection::markDirty(Worker& w) {
  if (dirty) return;
  dirty = true;
  w.dirtyList_.push_back(w.handleOf(*this));
}

void Connection::setEpoll(Worker& w, bool wantWrite) {
  // While paused nothing is read, so EPOLLRDHUP (level-triggered) would only spin.
  w.modify(fd,
           (paused ? 0u : uint32_t(EPOLLIN | EPOLLRDHUP)) | (wantWrite ? uint32_t(EPOLLOUT) : 0u),
           w.handleOf(*this));
  epollOut = wantWrite;
}

void Connection::pauseReading(Worker& w) {
  if (paused) return;
  paused = true;
  setEpoll(w, epollOut);
}

void Connection::resumeReading(Worker& w) {
  if (!paused) return;
  paused = false;
  setEpoll(w, epollOut);
  // Records OpenSSL decrypted already are invisible to epoll.
  if (hasBufferedInput()) w.readAgain_.push_back(w.handleOf(*this));
}

void Connection::flush(Worker& w) {
  if (tlsRecords) {
    flush<RecordTransport>(w);
  } else if (tls) {
    flush<TlsTransport>(w);
  } else {
    flush<PlainTransport>(w);
  }
}

template <class T>
void Connection::flush(Worker& w) {
  while (!out.empty() || T::hasPendingOutput(*this)) {
    ssize_t n = T::write(*this, w);
    if (n < 0) {
      if (n == kWriteRetry) continue;
      if (n == kWriteBlocked) {
        out.privatize(w.pool_);
        writeBlocked(w);
        return;
      }
      if (n == kWriteFailed) {
        w.kill(*this, nullptr);
        return;
      }
      // kWriteWait: the next read event marks the queue dirty again.
      out.privatize(w.pool_);
      return;
    }
    w.stats_->add(Counter::BytesOut, uint64_t(n));
    out.consume(w.pool_, size_t(n));
    if (extras) [[unlikely]]
      extras->writeProgressMs = w.nowMs_;
    if (out.empty() && !closeSent) takePendingPong(w);
  }
  if (extras) [[unlikely]]
    extras->overMarkSinceMs = 0;
  if (epollOut && !T::readWantsWrite(*this)) setEpoll(w, false);
  if (finAfterFlush) {
    finAfterFlush = false;
    T::shutdown(*this, w);
    ::shutdown(fd, SHUT_WR);
  }
  T::afterFlush(*this, w);
}

void Connection::writeBlocked(Worker& w) {
  ConnectionExtras& x = extra();
  if (!epollOut) {
    setEpoll(w, true);
    // The client is judged from the moment it stops taking bytes.
    x.writeProgressMs = w.nowMs_;
  }
  const Settings& s = w.server_.settings();
  if (out.bytes() <= s.outboundHighWaterMark) {
    x.overMarkSinceMs = 0;
  } else if (x.overMarkSinceMs == 0) {
    x.overMarkSinceMs = w.nowMs_;
  }
  if (x.outboundDeadlineMs == 0 && s.slowConsumerTimeoutMs && state == ConnState::Open) {
    x.outboundDeadlineMs = w.nowMs_ + s.slowConsumerTimeoutMs;
    w.timers_.push(Worker::TimerEntry{x.outboundDeadlineMs,
                                      w.handleOf(*this) | Worker::TimerEntry::kOutbound});
  }
}

SendStatus Connection::makeRoom(Worker& w) {
  flush(w);
  if (state == ConnState::Dead) return SendStatus::NoConnection;  // the write failed
  if (out.bytes() <= w.server_.settings().maxOutboundQueue) return SendStatus::Ok;
  closeSlowConsumer(w, "slow consumer: outbound queue over max_outbound_queue_size");
  return SendStatus::SlowConsumer;
}

void Connection::checkSlowConsumer(Worker& w) {
  ConnectionExtras& x = *extras;  // the watch's entry is current (Worker::onTimer)
  x.outboundDeadlineMs = 0;
  // Judged only while a write would block: a queue that merely waits for this turn's flush
  // is not slow. Closing connections are bounded by close_timeout_ms instead.
  if (state != ConnState::Open || !epollOut || out.empty()) return;
  const uint64_t limit = w.server_.settings().slowConsumerTimeoutMs;
  if (w.nowMs_ - x.writeProgressMs >= limit) {
    closeSlowConsumer(w, "slow consumer: no outbound progress for slow_consumer_timeout_ms");
    return;
  }
  if (x.overMarkSinceMs && w.nowMs_ - x.overMarkSinceMs >= limit) {
    closeSlowConsumer(w, "slow consumer: outbound queue above the high-water mark for too long");
    return;
  }
  uint64_t next = x.writeProgressMs + limit;
  if (x.overMarkSinceMs) next = std::min(next, x.overMarkSinceMs + limit);
  x.outboundDeadlineMs = next;
  w.timers_.push(Worker::TimerEntry{next, w.handleOf(*this) | Worker::TimerEntry::kOutbound});
}

void Connection::onDeadline(Worker& w) {
  const Settings& s = w.server_.settings();
  switch (state) {
    case ConnState::Handshake:
      w.stats_->add(Counter::Timeouts);
      if (hs && hs->waiting) {
        // The request was complete; the service's onConnect did not answer in time.
        w.stats_->add(Counter::ConnectTimeouts);
        rejectHandshake(w, 503, "the service did not answer in time (handshake_timeout_ms)");
        break;
      }
      w.stats_->add(Counter::HandshakeTimeouts);
      if (inTlsHandshake()) {
        w.kill(*this, nullptr);  // no HTTP to answer inside an unfinished TLS handshake
        break;
      }
      rejectHandshake(w, 408, "handshake timeout");
      break;
    case ConnState::Open: {
      // Not read while its handler waits: the client is not idle, we are.
      if (held) lastActivityMs = w.nowMs_;
      uint64_t since = w.nowMs_ - lastActivityMs;
      if (s.idleTimeoutMs && since >= s.idleTimeoutMs) {
        w.stats_->add(Counter::Timeouts);
        w.stats_->add(Counter::IdleTimeouts);
        beginClose(w, 1001, "idle timeout");
        break;
      }
      if (s.pingIntervalMs && !pingOutstanding && since >= s.pingIntervalMs) {
        queueFrame(w, Opcode::Ping, nullptr, 0);
        pingOutstanding = true;
      }
      w.scheduleActivityTimer(*this);
      break;
    }
    case ConnState::Closing:
    case ConnState::Draining:
      w.stats_->add(Counter::Timeouts);
      w.kill(*this, nullptr);
      break;
    case ConnState::ProxyHeader:
      w.stats_->add(Counter::Timeouts);
      w.refuseProxyHeader(*this, "no PROXY header within proxy_protocol_timeout_ms");
      break;
    case ConnState::Dead:
      break;
  }
}

void Connection::closeSlowConsumer(Worker& w, const char* why) {
  // It does not read, so a close frame would not reach it either: drop it.
  w.stats_->add(Counter::SlowConsumers);
  w.kill(*this, why);
}

void Connection::releaseTransport() {
  if (tls) {
    SSL_free(tls);
    tls = nullptr;
  }
  if (hs) hs->tlsContext.reset();
  delete tlsRecords;
  tlsRecords = nullptr;
}

// The worker's door to the writes, here with flush so that it is compiled (and inlined)
// with it.
void Worker::flushDirty() {
  // Connections dirtied during the flush go to the emptied dirtyList_, for the caller's next
  // round; both vectors keep their storage.
  flushing_.swap(dirtyList_);
  const size_t n = flushing_.size();
  for (size_t i = 0; i < n; ++i) {
    if (i + 4 < n) prefetch(flushing_[i + 4]);
    const uint64_t h = flushing_[i];
    Connection* c = lookup(h);
    if (!c || c->state == ConnState::Dead) continue;
    c->dirty = false;
    c->flush(*this);
  }
  flushing_.clear();
}

}  // namespace lapps
