// The transport under WsClient and TcpClient: resolve, non-blocking connect (trying each
// address in turn), optional TLS, a send queue flushed on EPOLLOUT, reads with
// back-pressure. It owns no protocol: subclasses get open / data / end hooks.
//
// Threading and re-entrancy: everything runs on the host's thread. Hooks are called only
// from onIo(). A hook (and the listener behind it) may call any method, and may destroy the
// client; code still on the stack detects that with Alive and touches nothing afterwards.
// Write errors found outside onIo() (inside send()) are reported from the next onIo(): the
// socket is shut down so the host's epoll wakes up at once.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/resolver.h"
#include "client/tls-context.h"
#include "io/io-host.h"

namespace lapps {

class StreamClient : public IoHandler {
 public:
  StreamClient(const StreamClient&) = delete;
  StreamClient& operator=(const StreamClient&) = delete;
  // Closes the socket without calling any hook. Precondition: the host is still alive.
  ~StreamClient() override;

  void onIo(int fd, uint32_t events) final;

  // Bytes accepted by send() that the socket has not taken yet (before TLS encryption).
  size_t bufferedAmount() const { return out_.size() - outHead_; }

 protected:
  explicit StreamClient(IoHost& host) : host_(host) {}

  enum class Phase : uint8_t { Idle, Resolving, Connecting, TlsHandshake, Open, Closed };
  Phase phase() const { return phase_; }

  // Starts resolving and connecting to host:port, over TLS if tls && tls->ctx. Returns
  // false with `err`, having started nothing, if the arguments are unusable, the client was
  // used before, or no address can even be tried (then no hook is ever called).
  bool startConnect(std::string_view host, uint16_t port, const TlsOptions* tls, std::string& err);

  // Reserves n bytes at the end of the send queue for the caller to fill, then flush().
  // Data queued before the stream is open goes out first once it is.
  uint8_t* appendOut(size_t n);
  // Writes what the socket takes now; EPOLLOUT is watched while anything is left.
  void flush();
  // Once the queue is empty: TLS close_notify, then FIN. Reading goes on until EOF.
  void shutdownAfterFlush();
  // Back-pressure: no reads (and no onStreamData) while paused; EOF and errors wait too.
  void setReadPaused(bool paused);
  bool readPaused() const { return readPaused_; }
  // Closes the socket and drops queued data now. No hook is called.
  void closeNow();

  virtual void onStreamOpen() = 0;  // TCP connected and, with TLS, handshake done
  virtual void onStreamData(uint8_t* data, size_t len) = 0;
  // The stream is over and already closed: error is empty for EOF, else what went wrong
  // (resolution, connect, TLS handshake or verification, I/O).
  virtual void onStreamEnd(std::string_view error) = 0;

  // Tells code on the stack whether the client was destroyed by a callback it made:
  //   Alive alive(this); listener.onX(); if (!alive) return;
  // Frames nest: the destructor marks the innermost, which hands the mark outwards.
  class Alive {
   public:
// The frame's address is unhooked again by the destructor (or the client is gone), which
// GCC's -Wdangling-pointer cannot see through the branch.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
    explicit Alive(StreamClient* c) : c_(c), outer_(c->gone_) {
      c->gone_ = &gone_;
    }
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif
    ~Alive() {
      if (!gone_) {
        c_->gone_ = outer_;
      } else if (outer_) {
        *outer_ = true;
      }
    }
    Alive(const Alive&) = delete;
    Alive& operator=(const Alive&) = delete;
    explicit operator bool() const {
      return !gone_;
    }

   private:
    StreamClient* c_;
    bool* outer_;
    bool gone_ = false;
  };

 private:
  bool tryNextAddress(std::string& err);
  void onResolved();
  void onConnectEvent(uint32_t events);
  void startTls();
  void continueTls();
  void becomeOpen();
  void onOpenEvent(uint32_t events);
  void readSome(const Alive& alive);
  void sendShutdown();
  void deferError(std::string error);
  void end(std::string error);
  void closeSocket();
  void updateWatch();

  IoHost& host_;
  Phase phase_ = Phase::Idle;
  int fd_ = -1;
  uint32_t watched_ = 0;
  bool watching_ = false;

  std::unique_ptr<AsyncResolve> resolve_;
  std::vector<SocketAddress> addresses_;
  size_t nextAddress_ = 0;
  std::string hostName_;
  uint16_t port_ = 0;
  std::string lastConnectError_;

  SSL_CTX* ctx_ = nullptr;  // own reference, held from startConnect to closeNow
  SSL* ssl_ = nullptr;
  std::string tlsName_;
  bool sni_ = true, verifyHostname_ = true;
  uint32_t tlsWant_ = 0;  // EPOLLIN / EPOLLOUT the handshake waits for

  std::vector<uint8_t> out_;
  size_t outHead_ = 0;
  std::unique_ptr<uint8_t[]> readBuf_;
  std::string pendingError_;  // found outside onIo, reported by the next onIo
  bool readPaused_ = false;
  bool peerHungUp_ = false;      // EPOLLHUP seen while paused: unwatched until resumed
  bool kick_ = false;            // read once on the next EPOLLOUT (TLS data buffered in SSL)
  bool writeWantsRead_ = false;  // SSL_write asked for readability
  bool readWantsWrite_ = false;  // SSL_read asked for writability
  bool shutdownRequested_ = false, shutdownSent_ = false;

  bool* gone_ = nullptr;  // innermost Alive frame
};

}  // namespace lapps
