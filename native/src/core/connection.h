// One client connection, owned by exactly one worker for its whole life: its state and its
// behaviour from the handshake through frames, the close handshake and the last flush
// (connection.cc). The bytes go through a transport policy, plain or TLS, chosen once per
// event at the public entry points below; everything under them is instantiated per
// transport, with no test of which one it is. The worker (passed in) owns what connections
// share: the loop, the read buffer, the buffer pool, the timers, the dirty and dead lists.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/ssl.h>

#include "core/conn-state.h"
#include "core/connect.h"
#include "core/out-queue.h"
#include "core/peer-address.h"
#include "core/pending-queue.h"
#include "protocol/frame-parser.h"
#include "protocol/handshake-parser.h"
#include "protocol/opcode.h"

namespace lapps {

class ServiceInstance;
class TlsServerContext;
class Worker;
struct ServiceRuntime;
struct PlainTransport;
struct TlsTransport;
struct RecordTransport;
struct TlsRecordState;
enum class SendStatus : uint8_t;

// Only present while the handshake is in progress (freed after the 101 / error).
// The buffer has a fixed capacity just above the header limit and never moves, so the
// parser's views into it stay valid while bytes trickle in.
struct HandshakeData {
  HandshakeData(size_t maxHeaderBytes, size_t maxHeaders)
      : parser(maxHeaderBytes, maxHeaders), cap(maxHeaderBytes + 512), buf(new char[cap]) {}
  HandshakeParser parser;
  size_t cap;
  size_t size = 0;
  std::unique_ptr<char[]> buf;  // every byte received so far
  int32_t instance = -1;        // instance chosen by the worker that handed the socket over
  const ServiceRuntime* service = nullptr;  // while its onConnect decides (waiting)
  // The service's onConnect is deciding (ServiceInstance::onConnect answered Pending): the
  // request is complete; bytes that arrive meanwhile are kept here, behind it, and reading
  // pauses once the buffer is full.
  bool waiting = false;
  // wss: the context that made the session, kept through the handshake (the session holds
  // references to what its SNI callback needs; nothing of it is used after the 101).
  std::shared_ptr<const TlsServerContext> tlsContext;
  // The client: the socket's peer, or behind a proxy the client it names (PROXY header,
  // X-Forwarded-For / Forwarded from trusted_proxies) once known. From the 101 on it is
  // kept in the worker's ConnInfoTable only (Worker::peerOf).
  PeerAddress peer{};
  uint64_t acceptedMs = 0;  // the handshake timeout and the access log's duration
};

// What a connection needs only while it is busy or has subscribed: allocated the first time
// (Connection::extra), so that an idle connection does not carry it (docs/memory.md). Kept
// while the connection lives, or until the worker's quiet-time release finds it at rest.
struct ConnectionExtras {
  // Bytes read but not parsed yet: what followed the end of a slice (the connection had
  // its share of the loop turn) or a suspended handler. Parsed in place, from backlogOff,
  // before anything else is read from the socket (reading is paused meanwhile).
  std::string backlog;
  size_t backlogOff = 0;
  PendingQueue pending;            // messages parsed while held, in order
  std::string message;             // reassembly of a fragmented message
  std::vector<uint64_t> channels;  // broadcast channels subscribed to
  // Slow-consumer watch, while a write would block (epollOut): when bytes last went out,
  // since when the queue has been above the high-water mark (0: not above), and the
  // current entry of the watch in the timer heap (0: none).
  uint64_t writeProgressMs = 0;
  uint64_t overMarkSinceMs = 0;
  uint64_t outboundDeadlineMs = 0;
  // A pong owed while writes are blocked (see Connection::pongPending): its payload (125
  // bytes at most), allocated when first owed.
  std::unique_ptr<uint8_t[]> pong;
  uint8_t pongLen = 0;

  // Nothing in it that the connection still needs: it may be freed.
  bool atRest() const {
    return pending.empty() && backlogOff == backlog.size() && message.empty() && channels.empty() &&
           outboundDeadlineMs == 0;
  }
};

class Connection {
 public:
  // --- behaviour (connection.cc); `w` is the worker that owns this connection ---
  // Readiness reported by epoll.
  void onEvent(Worker& w, uint32_t events);
  // Writes what is queued, as far as the socket takes it.
  void flush(Worker& w);
  // TLS: reads the records OpenSSL holds decrypted already (epoll cannot see them).
  void readAgain(Worker& w);
  // True if the transport holds received bytes that epoll cannot see (TLS records).
  bool hasBufferedInput() const;
  // True while a TLS handshake is unfinished: there is no HTTP to answer inside it.
  bool inTlsHandshake() const;
  // Reads what the kernel holds for it at this moment (bounded: a client that keeps
  // sending cannot extend it), so its complete messages are handled before a stop closes it.
  void readBeforeStop(Worker& w);
  // Request bytes (handed over by another worker, or read): to the handshake parser.
  void onHandshakeBytes(Worker& w, const char* data, size_t len);
  // The request was routed to instance `inst` of `svc` on this worker (and accepted by its
  // onConnect, with `user`): 101, then frames (the bytes that followed the request first).
  void open(Worker& w, const ServiceRuntime* svc, int32_t inst, UserValue user = {});
  void rejectHandshake(Worker& w, int status, std::string_view body);
  void beginClose(Worker& w, uint16_t code, std::string_view reason);
  // Sends FIN once the queue is flushed, then reads to EOF (bounded by the close timeout).
  void finishAndDrain(Worker& w);
  void queueFrame(Worker& w, Opcode op, const uint8_t* data, size_t len);
  // Large message, empty queue, plain transport: write it straight from the caller's bytes,
  // queue only what the socket did not take (saves copying the payload into the queue).
  void writeThrough(Worker& w, Opcode op, const uint8_t* data, size_t len);
  static constexpr size_t kWriteThroughBytes = 16 * 1024;
  // The queue is above the high-water mark as something more is queued: writes what the
  // socket takes first (one handler's burst is not a slow consumer), then enforces the
  // hard bound, max_outbound_queue_size. Ok, or why nothing may be queued.
  SendStatus makeRoom(Worker& w);
  // The slow-consumer watch is due: closes the connection if its queue made no progress, or
  // stayed above the high-water mark, for slow_consumer_timeout_ms.
  void checkSlowConsumer(Worker& w);
  void markDirty(Worker& w);
  void pauseReading(Worker& w);
  void resumeReading(Worker& w);
  // One slice of what waits: the messages a suspended handler (or a spent slice) held
  // back, then the bytes not parsed yet; then reading resumes, or the rest waits.
  void serveBacklog(Worker& w);
  // Its current deadline (deadlineMs) is due: handshake, idle or close timeout, or a ping.
  void onDeadline(Worker& w);
  // Frees the transport's session (teardown) and forgets the socket's TLS context.
  void releaseTransport();
  // Its extras, allocated the first time they are needed.
  ConnectionExtras& extra() {
    if (!extras) [[unlikely]]
      extras = std::make_unique<ConnectionExtras>();
    return *extras;
  }
  // Bytes of the backlog not parsed yet.
  bool hasBacklog() const { return extras && extras->backlogOff < extras->backlog.size(); }
  // Messages parsed while held (or past a spent slice) wait to be handled.
  bool hasPending() const { return extras && !extras->pending.empty(); }

 private:
  friend struct FrameSink;
  friend struct PlainTransport;
  friend struct TlsTransport;
  friend struct RecordTransport;

  template <class T>
  void onEvent(Worker& w, uint32_t events);
  template <class T>
  void flush(Worker& w);
  template <class T>
  void readBeforeStop(Worker& w);
  // Where the next read goes: the handshake buffer (never past its capacity) or the
  // worker's read buffer.
  void readTarget(Worker& w, char*& buf, size_t& cap);
  // Bytes read (or decrypted): to the handshake parser or the frames.
  void onBytesRead(Worker& w, char* buf, size_t n);
  void onFrameBytes(Worker& w, uint8_t* data, size_t len);
  void keepBacklog(Worker& w, const uint8_t* data, size_t len);
  // The backlog is done with (served, or nothing more is parsed): its storage goes back.
  void dropBacklog(Worker& w);
  // Parses with the connection's frame parser state, or the worker's while it is at rest;
  // after it, a state left mid-frame goes from the worker to the connection (keepParser),
  // and the connection's own goes back to the worker's spares once at rest (dropParser).
  size_t parseRead(Worker& w, uint8_t* data, size_t len);
  void keepParser(Worker& w);
  void dropParser(Worker& w);
  bool parserFailed() const { return parser && parser->failed(); }
  // Parses data (in place) up to the end of the slice; returns the bytes consumed.
  size_t parseSlice(Worker& w, uint8_t* data, size_t len);
  // Our close frame, after any pong still owed (nothing may follow a close frame).
  void queueClose(Worker& w, const uint8_t* payload, size_t len);
  // Answers a ping: queued at once, or coalesced into the one pending pong while writes to
  // the client are blocked.
  void queuePong(Worker& w, const uint8_t* payload, size_t len);
  // Moves the pending pong (if one is owed) into the queue. Checked after every
  // write: the test stays inline, the rare move is out of line.
  void takePendingPong(Worker& w) {
    if (pongPending) [[unlikely]]
      queuePendingPong(w);
  }
  void queuePendingPong(Worker& w);
  void setEpoll(Worker& w, bool wantWrite);
  // A write would block with bytes still queued: arms EPOLLOUT and the slow-consumer watch.
  void writeBlocked(Worker& w);
  void closeSlowConsumer(Worker& w, const char* why);

 public:
  // --- state, read by the worker (slots, timers, routing, slices, stop) ---
  int fd = -1;
  uint32_t slot = 0;
  uint32_t generation = 0;
  ConnState state = ConnState::Handshake;
  bool opened = false;         // reached Open: the service is owed exactly one onDisconnect
  bool closeSent = false;      // our close frame is queued
  bool closeReceived = false;  // the peer's close frame arrived
  bool epollOut = false;       // EPOLLOUT is armed (a write would have blocked)
  bool dirty = false;          // in the worker's flush list
  bool finAfterFlush = false;  // shutdown(SHUT_WR) once the queue is empty
  bool pingOutstanding = false;
  bool held = false;     // a handler of this connection is suspended; messages wait in pending
  bool paused = false;   // reading stopped (EPOLLIN off) while held
  bool counted = false;  // admitted by the ConnLimiter: released at teardown
  // Behind a proxy: counted in the server-wide total only until its client's address is
  // known (Worker::admitClient); then `counted`.
  bool addressPending = false;
  bool tlsWantsWrite = false;  // SSL_read needs the socket writable (handshake bytes pending)
  bool backlogged = false;     // in the worker's list of connections with work left (backlog_)
  // The backlog holds bytes or the connection has a frame parser state of its own: the
  // read path tests this one flag for both (kept by keepBacklog, serveBacklog, keepParser
  // and dropParser).
  bool leftover = false;
  // A pong owed while writes are blocked (RFC 6455 §5.5.3 lets us answer only the most
  // recent ping): it is queued once the queue ahead of it is written, so a client that
  // pings without reading holds one pending pong (in extras), not a growing queue.
  bool pongPending = false;
  uint32_t slabBlock = 0;  // the worker's Slab block that holds this record

  ServiceInstance* instance = nullptr;  // from the 101 on (or while its onConnect decides)
  std::unique_ptr<HandshakeData> hs;

  // The frame parser's state between reads, only while a frame or a fragmented message is
  // unfinished (or parsing failed): at rest, which is between nearly all reads, the
  // connection parses with the worker's state and holds none.
  std::unique_ptr<FrameParserState> parser;
  OutQueue out;
  std::unique_ptr<ConnectionExtras> extras;  // see ConnectionExtras; usually none

  uint64_t lastActivityMs = 0;
  uint64_t deadlineMs = 0;     // the timer entry that is current for this connection
  uint64_t timerQueuedMs = 0;  // the deadline of its entry in the timer heap (0: none)

  // wss: the session.
  SSL* tls = nullptr;
  // wss after the handshake (TLS 1.3): our record layer in place of the session (owned;
  // freed by releaseTransport). `tls` is then null.
  TlsRecordState* tlsRecords = nullptr;
};

}  // namespace lapps
