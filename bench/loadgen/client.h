// The event loop shared by every mode: one epoll instance, non-blocking sockets, edge-
// triggered. It opens connections with bounded concurrency (round-robin over the source
// addresses), does and checks the handshake, reads (one read per readiness unless the
// buffer came back full), parses server frames, answers pings, drains backpressure, and
// counts every failure. What to send and what to measure is the Mode's business (a
// policy, so the per-message path has no indirect calls; it takes the Client as `auto&`,
// so one mode runs over either transport):
//
//   static constexpr bool kWatchStdin;  // stop when stdin reaches EOF
//   static constexpr bool kNoDelay;     // TCP_NODELAY (only worth a syscall when streaming)
//   bool raw() const;                   // no handshake, no framing: onBytes, not onMessage
//   void onOpen(Client&, Conn&, uint64_t now);
//   void onMessage(Client&, Conn&, uint64_t payloadLen, uint64_t now);
//   void onBytes(Client&, Conn&, size_t n, uint64_t now);
//   void afterRead(Client&, Conn&, uint64_t now);  // once per readiness: batch writes here
//   void onLost(Conn&);                            // an open connection failed
//   void onAllAttempted(Client&, uint64_t now);    // every connection opened or failed
//   uint64_t deadline() const;                     // next time done() may change, or ~0
//   bool done(const Client&, uint64_t now) const;
//
// Optional (detected with requires-expressions, so modes without them compile as before):
//   void onData(Conn&, const uint8_t* p, size_t n);  // data-frame payload bytes as they come
//   void onTick(Client&, uint64_t now);              // once per loop turn, before done()
//   static constexpr bool kRawFrames;  // raw() still parses server frames (no handshake)
//   int wakeFd() const;                              // an eventfd other threads write to wake
//                                                    // this loop; drained, then onTick runs
//
// How bytes reach the socket is the Transport's (a policy too, chosen once per run:
// PlainTransport, plain-transport.h, is the syscalls themselves; TlsTransport,
// tls-transport.h, an OpenSSL session per connection). Its read/write/writev follow
// read(2)/write(2) conventions, drained() says when a read left the socket empty; kTls
// adds a TLS handshake state between TCP connect and the WebSocket request.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "clock.h"
#include "connection.h"
#include "errors.h"
#include "frame-pool.h"
#include "handshake.h"
#include "options.h"
#include "plain-transport.h"
#include "xoshiro.h"

namespace loadgen {

template <class Mode, class Transport = PlainTransport>
class Client {
 public:
  Client(const Options& o, Mode& mode)
      : o_(o), mode_(mode), request_(o.host, o.port, o.path), conns_(o.connections) {
    for (uint32_t i = 0; i < conns_.size(); ++i) conns_[i].index = i;
  }
  ~Client() {
    for (Conn& c : conns_) {
      if (c.fd >= 0) ::close(c.fd);
    }
    if (ep_ >= 0) ::close(ep_);
    if (signalFd_ >= 0) ::close(signalFd_);
  }

  // Runs until mode.done(), SIGTERM/SIGINT, or (kWatchStdin) stdin EOF. False on a setup
  // failure, already reported on stderr.
  bool run();

  // Writes iov[0..n) or queues what the socket does not take now. False when the
  // connection failed (it is then kDone).
  bool send(Conn& c, const iovec* iov, int n);
  // Ends a connection that is not an error. rst: SO_LINGER 0, so a RST instead of a FIN
  // (no TIME_WAIT left behind on either side).
  void close(Conn& c, bool rst);
  // close() for every connection still open or in flight.
  void closeAll(bool rst) {
    for (Conn& c : conns_) {
      if (c.fd >= 0) close(c, rst);
    }
  }

  void countError(ErrorKind k) { ++errors_[size_t(k)]; }
  uint64_t errors() const;
  uint64_t errorCount(size_t kind) const { return errors_[kind]; }
  // Prints "error_detail":{"connect":n,...} (no surrounding comma).
  void printErrorDetail(FILE* out) const;
  uint64_t startNs() const { return startNs_; }
  uint32_t openCount() const { return open_; }
  Conn* conn(uint32_t i) { return i < conns_.size() ? &conns_[i] : nullptr; }
  uint64_t pongsSent() const { return pongs_; }
  // Prints ,"tls":{...} with --tls, nothing without.
  void printTls(FILE* out) const { io_.printJson(out); }

 private:
  static constexpr uint64_t kSignalTag = ~uint64_t(0);
  static constexpr uint64_t kStdinTag = ~uint64_t(0) - 1;
  static constexpr uint64_t kWakeTag = ~uint64_t(0) - 2;
  static constexpr size_t kReadSize = 256 * 1024;
  static constexpr int kMaxEvents = 1024;
  static constexpr uint64_t kScanNs = 100'000'000;  // timeout scan period

  // The FrameReader sink: forwards messages to the mode, answers pings.
  struct Sink {
    Client* cl;
    Conn* c;
    uint64_t now;
    void onData(const uint8_t* p, size_t n) {
      if constexpr (requires { cl->mode_.onData(*c, p, n); }) cl->mode_.onData(*c, p, n);
    }
    bool onMessage(uint64_t len) {
      cl->mode_.onMessage(*cl, *c, len, now);
      return c->state != ConnState::kDone;
    }
    bool onPing(const uint8_t* p, size_t n) {
      cl->pong(*c, p, n);
      return c->state != ConnState::kDone;
    }
    bool onClose() {
      cl->fail(*c, ErrorKind::kClosed);
      return false;
    }
    bool onProtocolError() {
      cl->fail(*c, ErrorKind::kProtocol);
      return false;
    }
  };

  void startConnect(Conn& c);
  void established(Conn& c);
  void tlsHandshake(Conn& c);
  void sendUpgrade(Conn& c);
  void open(Conn& c, uint64_t now);
  void fail(Conn& c, ErrorKind k);
  void release(Conn& c);
  void dispatch(const epoll_event& ev);
  void onReadable(Conn& c);
  bool consume(Conn& c, const uint8_t* p, size_t n, uint64_t now);
  bool flush(Conn& c);
  void pong(Conn& c, const uint8_t* p, size_t n);
  void scanTimeouts(uint64_t now);
  int timeoutMs(uint64_t now) const;

  const Options& o_;
  Mode& mode_;
  Transport io_;
  HandshakeRequest request_;
  std::vector<Conn> conns_;
  std::unique_ptr<uint8_t[]> readBuf_{new uint8_t[kReadSize]};
  Xoshiro256 rng_;
  int ep_ = -1;
  int signalFd_ = -1;
  bool stop_ = false;
  bool attempted_ = false;
  uint32_t next_ = 0;      // next connection to start
  uint32_t low_ = 0;       // no in-flight connection below this index
  uint32_t inFlight_ = 0;  // connecting or handshaking
  uint32_t open_ = 0;
  uint64_t startNs_ = 0;
  uint64_t nextScanNs_ = 0;
  uint64_t pongs_ = 0;
  uint64_t errors_[size_t(ErrorKind::kCount)] = {};
};

}  // namespace loadgen

#include "client-impl.h"  // IWYU pragma: export
