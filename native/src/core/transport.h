// The transport policies of a Connection: how its bytes are read from and written to the
// socket, plain (ws) or through a TLS session (wss). Connection's templates are
// instantiated once per policy (connection.cc), so the data path never asks which one it
// is on; only the public entry points of Connection choose, once per event. Included by
// connection.cc only.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/connection.h"
#include "core/worker.h"

namespace lapps {

// What a policy's write() returns when the socket took nothing (else the bytes taken).
enum : ssize_t {
  kWriteRetry = -1,    // interrupted: try again at once
  kWriteBlocked = -2,  // the socket is full: wait for EPOLLOUT
  kWriteWait = -3,     // TLS wants to read first: the next read event marks the queue dirty
  kWriteFailed = -4,   // the connection is gone
};

struct PlainTransport {
  // Received bytes are in the kernel, where epoll sees them.
  static bool hasBufferedInput(const Connection&) { return false; }
  // The read loop never waits for the socket to become writable.
  static bool readWantsWrite(const Connection&) { return false; }
  // Bytes one round of readBeforeStop reads at least.
  static size_t roundBytes(const Worker& w) { return w.readBuf_.size(); }

  // One read: epoll is level-triggered and reports the rest.
  static void onReadable(Connection& c, Worker& w) {
    char* buf;
    size_t cap;
    c.readTarget(w, buf, cap);
    ssize_t n = cap ? ::recv(c.fd, buf, cap, 0) : 0;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      w.kill(c, nullptr);
      return;
    }
    if (n == 0) {
      // EOF: the end of a clean close while draining, an abrupt drop otherwise.
      w.kill(c, nullptr);
      return;
    }
    c.onBytesRead(w, buf, size_t(n));
  }

  // Inlined into Connection::flush: the hot write path stays one function, as it was.
  [[gnu::always_inline]] static ssize_t write(Connection& c, Worker&) {
    iovec iov[64];
    int cnt = c.out.gather(iov, 64);
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = size_t(cnt);
    ssize_t n = ::sendmsg(c.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno == EINTR) return kWriteRetry;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return kWriteBlocked;
    return kWriteFailed;
  }

  // Before FIN: nothing to say at this layer.
  static void shutdown(Connection&) {}
};

struct TlsTransport {
  static bool hasBufferedInput(const Connection& c) { return SSL_has_pending(c.tls); }
  // SSL_read needs the socket writable (handshake bytes pending).
  static bool readWantsWrite(const Connection& c) { return c.tlsWantsWrite; }
  // A record carries more than 16 bytes of ciphertext.
  static size_t roundBytes(const Worker&) { return 16; }

  // One record at a time, for as long as the session holds decrypted or buffered bytes:
  // epoll only sees the socket, so nothing may be left inside OpenSSL when we return.
  static void onReadable(Connection& c, Worker& w) {
    do {
      char* buf;
      size_t cap;
      c.readTarget(w, buf, cap);
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
            if (!c.epollOut) c.setEpoll(w, true);
            return;
          case SSL_ERROR_ZERO_RETURN:  // close_notify: EOF
            w.kill(c, nullptr);
            return;
          default:
            if (!established) {
              w.stats_->add(Counter::TlsHandshakesFailed);
              unsigned long e = ERR_peek_last_error();
              char text[256] = "connection closed";
              if (e) ERR_error_string_n(e, text, sizeof text);
              w.log(LogLevel::Debug, std::string("TLS handshake failed: ") + text);
            }
            w.kill(c, nullptr);
            return;
        }
      }
      c.onBytesRead(w, buf, size_t(n));
      // A write that wanted to read (a TLS 1.3 key update) may go on now.
      if (!c.out.empty()) c.markDirty(w);
      // A hand-over to another worker took the session (and killed this connection).
    } while (c.state != ConnState::Dead && !c.paused && SSL_has_pending(c.tls));
  }

  static ssize_t write(Connection& c, Worker& w) {
    constexpr size_t kStage = 16 * 1024;  // one full TLS record
    iovec iov[64] = {};
    int cnt = c.out.gather(iov, 64);
    const void* data = iov[0].iov_base;
    size_t len = iov[0].iov_len;
    if (len < kStage && cnt > 1) {
      // Many small frames: one record instead of one per frame. A retry after WANT_WRITE
      // gathers the same leading bytes again, at least as many, as OpenSSL requires.
      if (!w.tlsStage_) w.tlsStage_.reset(new uint8_t[kStage]);
      len = 0;
      for (int i = 0; i < cnt && len < kStage; ++i) {
        size_t take = std::min(iov[i].iov_len, kStage - len);
        std::memcpy(w.tlsStage_.get() + len, iov[i].iov_base, take);
        len += take;
      }
      data = w.tlsStage_.get();
    }
    ERR_clear_error();
    int n = SSL_write(c.tls, data, int(std::min<size_t>(len, INT32_MAX)));
    if (n > 0) return n;
    int err = SSL_get_error(c.tls, n);
    if (err == SSL_ERROR_WANT_WRITE) return kWriteBlocked;
    if (err == SSL_ERROR_WANT_READ) return kWriteWait;
    return kWriteFailed;
  }

  // close_notify before FIN; the peer's is not awaited.
  static void shutdown(Connection& c) { SSL_shutdown(c.tls); }
};

}  // namespace lapps
