// One client connection's state: a small struct owned by exactly one worker for its whole
// life. Behaviour lives in worker.cc / connection.cc (the worker drives it).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include <openssl/ssl.h>

#include "core/conn-state.h"
#include "core/out-queue.h"
#include "core/peer-address.h"
#include "protocol/frame-parser.h"
#include "protocol/handshake-parser.h"

namespace lapps {

class ServiceInstance;
class TlsServerContext;
struct ServiceRuntime;

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
};

struct Connection {
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
  bool tlsWantsWrite = false;  // SSL_read needs the socket writable (handshake bytes pending)
  bool backlogged = false;     // in the worker's list of connections with work left (backlog_)
  // A pong owed while writes are blocked (RFC 6455 §5.5.3 lets us answer only the most
  // recent ping): it is queued once the queue ahead of it is written, so a client that
  // pings without reading holds one pending pong, not a growing queue.
  bool pongPending = false;
  uint8_t pongLen = 0;
  std::unique_ptr<uint8_t[]> pong;  // its payload (125 bytes at most), allocated when first owed

  struct PendingMessage {
    std::string data;
    int opcode;
  };
  std::deque<PendingMessage> pending;  // messages parsed while held, in order
  // Bytes read but not parsed yet: what followed the end of a slice (the connection had
  // its share of the loop turn) or a suspended handler. Parsed in place, from backlogOff,
  // before anything else is read from the socket (reading is paused meanwhile).
  std::string backlog;
  size_t backlogOff = 0;

  const ServiceRuntime* service = nullptr;
  ServiceInstance* instance = nullptr;
  std::unique_ptr<HandshakeData> hs;

  FrameParserState parser{};
  std::string message;  // reassembly of a fragmented message
  OutQueue out;
  std::vector<uint64_t> channels;  // broadcast channels subscribed to (usually none)

  uint64_t lastActivityMs = 0;
  uint64_t deadlineMs = 0;  // the timer entry that is current for this connection
  // Slow-consumer watch, while a write would block (epollOut): when bytes last went out,
  // since when the queue has been above the high-water mark (0: not above), and the
  // current entry of the watch in the timer heap (0: none).
  uint64_t writeProgressMs = 0;
  uint64_t overMarkSinceMs = 0;
  uint64_t outboundDeadlineMs = 0;

  PeerAddress peer{};

  // wss: the session, and the context that made it (its SNI callback needs it alive).
  SSL* tls = nullptr;
  std::shared_ptr<const TlsServerContext> tlsContext;
};

}  // namespace lapps
