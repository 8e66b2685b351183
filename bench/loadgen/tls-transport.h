// The byte stream under the WebSocket when --tls is on: one non-blocking OpenSSL client
// session per connection on its socket (SSL_set_fd), driven by the same edge-triggered
// epoll readiness as the plain path. The benchmark measures the server, so the client
// does not verify the certificate (SSL_VERIFY_NONE); it sends SNI "localhost" and offers
// ALPN "http/1.1". Every connection is a full handshake unless --tls-resume: then each
// new connection offers the newest session the server gave (TLS 1.3 ticket or 1.2 id).
//
// read/write/writev keep the read(2)/write(2) conventions the client loop already handles:
// > 0 bytes, 0 = end of stream (read), -1 with errno (EAGAIN: wait for readiness, either
// direction; anything else failed the connection). A short SSL_read does not mean the
// socket is drained (it returns one record at a time): drained() says so when OpenSSL's
// last read(2) came back short and it holds no bytes, so no read ends in EAGAIN.
#pragma once

#include <openssl/ssl.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "connection.h"
#include "options.h"

namespace loadgen {

class TlsTransport {
 public:
  static constexpr bool kTls = true;

  TlsTransport() = default;
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;
  ~TlsTransport();

  // Builds the client context; false (reported on stderr) when OpenSSL refuses.
  bool init(const Options& o);
  // Starts or continues the TLS handshake of a connected socket: 1 done, 0 waiting for
  // readiness, -1 failed (the first failure's reason goes to stderr).
  int handshake(Conn& c);
  ssize_t read(Conn& c, void* buf, size_t n);
  ssize_t write(Conn& c, const void* p, size_t n);
  // SSL has no gather write: several iovecs are copied into one buffer, so a batch of
  // frames is still one SSL_write, one record (up to 16 KiB) and one write(2).
  ssize_t writev(Conn& c, const iovec* iov, int n);
  // Everything the socket had is delivered: OpenSSL's last read(2) was short and it holds
  // nothing more, whole or partial record.
  bool drained(const Conn& c, size_t, size_t) const {
    const Session& s = sessions_[c.index];
    return s.socketDrained && !SSL_has_pending(s.ssl);
  }
  // The last read stopped because OpenSSL must write first: retry it on EPOLLOUT.
  bool readWantsWrite(const Conn& c) const { return sessions_[c.index].readWantsWrite; }
  // Frees the session without a close_notify (the caller resets or closes the socket).
  void release(Conn& c);
  // ,"tls":{protocol, cipher, group, alpn, handshakes, resumed, resume} (leading comma).
  void printJson(FILE* out) const;

 private:
  struct Session {
    SSL* ssl = nullptr;
    bool readWantsWrite = false;
    bool socketDrained = false;  // OpenSSL's last read(2) got less than it asked for
  };

  static int onNewSession(SSL* ssl, SSL_SESSION* session);
  // The read BIO's callback: notes socketDrained after every read(2) OpenSSL makes.
  static long onSocketIo(BIO* bio, int op, const char* buf, size_t len, int argi, long argl,
                         int ret, size_t* processed);
  void completed(SSL* ssl);
  // Maps a failed SSL_read/SSL_write to -1 and errno; EAGAIN for WANT_READ/WANT_WRITE.
  ssize_t failed(Session& s, int ret, bool reading);

  SSL_CTX* ctx_ = nullptr;
  bool resume_ = false;
  std::vector<Session> sessions_;  // by Conn::index
  std::vector<uint8_t> gather_;    // writev's copy
  SSL_SESSION* latest_ = nullptr;  // --tls-resume: offered to new connections
  uint64_t handshakes_ = 0;
  uint64_t resumed_ = 0;
  bool reportedFailure_ = false;
  // From the first completed handshake: what the server negotiated.
  std::string protocol_, cipher_, group_, alpn_;
};

}  // namespace loadgen
