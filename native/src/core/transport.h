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
#include "security/tls-records.h"

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
    ssize_t n;
    if (cnt == 1 && c.out.frontShared()) {
      // A turn's joined broadcasts alone, the fan-out case (thousands of writes a turn):
      // send() spares the kernel copying in a msghdr and an iovec array. (An echo keeps
      // sendmsg: measured, send() costs it more instructions than it saves.)
      n = ::send(c.fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    } else {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = size_t(cnt);
      n = ::sendmsg(c.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    if (n >= 0) return n;
    if (errno == EINTR) return kWriteRetry;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return kWriteBlocked;
    return kWriteFailed;
  }

  // Before FIN: nothing to say at this layer.
  static void shutdown(Connection&, Worker&) {}
  // Every byte write() took is in the kernel.
  static bool hasPendingOutput(const Connection&) { return false; }
  static void afterFlush(Connection&, Worker&) {}
};

// A TLS 1.3 connection after the takeover: records read from the socket into the worker's
// read buffer and opened there in place; the queue sealed straight from its buffers into
// the worker's seal buffer, up to 16 KiB per record and four records per send.
struct RecordTransport {
  // A partial record waits for its end, which epoll reports.
  static bool hasBufferedInput(const Connection&) { return false; }
  static bool readWantsWrite(const Connection&) { return false; }
  static size_t roundBytes(const Worker& w) { return w.readBuf_.size(); }

  static void onReadable(Connection& c, Worker& w) {
    TlsRecordState& r = *c.tlsRecords;
    uint8_t* buf = w.readBuf_.data();
    // The start of an unfinished record goes before what the socket brings now.
    const size_t have = r.takePartial(buf);
    ssize_t n = ::recv(c.fd, buf + have, w.readBuf_.size() - have, 0);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (have) r.keepPartial(buf, have);
        return;
      }
      // EOF (also inside a record: nothing of it was delivered) or an error.
      w.kill(c, nullptr);
      return;
    }
    const size_t len = have + size_t(n);
    TlsOpenResult o = w.tlsCrypto_->open(r, buf, len);
    if (o.status == TlsOpenStatus::Fatal) [[unlikely]] {
      fail(c, w, o);
      return;
    }
    if (o.consumed < len) r.keepPartial(buf + o.consumed, len - o.consumed);
    r.releasePartial();
    if (r.keyUpdateOwed) [[unlikely]]
      c.markDirty(w);  // our KeyUpdate goes out with the next flush
    if (o.plain) c.onBytesRead(w, reinterpret_cast<char*>(buf), o.plain);
    // close_notify: EOF, after what came before it.
    if (o.status == TlsOpenStatus::CloseNotify && c.state != ConnState::Dead) w.kill(c, nullptr);
  }

  // Returns the plaintext sealed (sealed bytes the socket did not take are kept and go
  // first next time), or 0 when only kept bytes were sent.
  static ssize_t write(Connection& c, Worker& w) {
    TlsRecordState& r = *c.tlsRecords;
    TlsRecordCrypto& k = *w.tlsCrypto_;
    if (r.pendingLen) [[unlikely]]
      return sendPending(c, r);
    uint8_t* out = k.sealBuffer();
    if (r.keyUpdateOwed) [[unlikely]] {
      // Before our next application data (RFC 8446 §4.6.3).
      const size_t n = k.sealKeyUpdate(r, out);
      if (n == 0) return kWriteFailed;
      r.keepPending(out, n);
      return sendPending(c, r);
    }
    if (c.out.empty()) return 0;
    iovec iov[64];
    const int cnt = c.out.gather(iov, 64);
    size_t gathered = 0;
    for (int i = 0; i < cnt; ++i) gathered += iov[i].iov_len;
    size_t sealed = 0, plain = 0;
    for (size_t i = 0; i < TlsRecordCrypto::kSealBatch && plain < gathered; ++i) {
      size_t taken = 0;
      const size_t n = k.seal(r, 23, iov, cnt, plain, out + sealed, taken);
      if (n == 0) return kWriteFailed;
      sealed += n;
      plain += taken;
    }
    ssize_t sent = ::send(c.fd, out, sealed, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return kWriteFailed;
      sent = 0;
    }
    // A sealed record is sent as it is or never: its sequence number is spent.
    if (size_t(sent) < sealed) r.keepPending(out + sent, sealed - size_t(sent));
    return ssize_t(plain);
  }

  // close_notify before FIN, if the socket takes it.
  static void shutdown(Connection& c, Worker& w) { sendAlert(c, w, 1, kAlertCloseNotify); }
  static bool hasPendingOutput(const Connection& c) { return c.tlsRecords->pendingLen != 0; }
  static void afterFlush(Connection&, Worker&) {}

 private:
  static ssize_t sendPending(Connection& c, TlsRecordState& r) {
    ssize_t n = ::send(c.fd, r.pending.get() + r.pendingOff, r.pendingLen - r.pendingOff,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) return kWriteRetry;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return kWriteBlocked;
      return kWriteFailed;
    }
    r.pendingOff += uint32_t(n);
    if (r.pendingOff == r.pendingLen) r.dropPending();
    return 0;
  }

  // Best effort, after any sealed bytes still kept: the connection ends anyway.
  static void sendAlert(Connection& c, Worker& w, uint8_t level, uint8_t desc) {
    TlsRecordState& r = *c.tlsRecords;
    if (r.pendingLen && sendPending(c, r) < 0) return;
    if (r.pendingLen) return;
    const uint8_t alert[2] = {level, desc};
    uint8_t out[64];
    const size_t n = w.tlsCrypto_->seal(r, 21, alert, 2, out);
    if (n) (void)::send(c.fd, out, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  }

  // A record that may not be: a fatal alert (unless the peer sent one), then the end.
  static void fail(Connection& c, Worker& w, const TlsOpenResult& o) {
    if (!o.peerAlert) sendAlert(c, w, 2, o.alert);
    w.stats_->add(Counter::TlsRecordErrors);
    w.log(LogLevel::Debug, o.peerAlert ? "TLS: the client sent a fatal alert"
                                       : "TLS: a record failed (bad tag or not allowed)");
    w.kill(c, nullptr);
  }
};

struct TlsTransport {
  // Null once taken over: by a flush inside this event, or the read below.
  static bool hasBufferedInput(const Connection& c) { return c.tls && SSL_has_pending(c.tls); }
  // SSL_read needs the socket writable (handshake bytes pending).
  static bool readWantsWrite(const Connection& c) { return c.tlsWantsWrite; }
  // A record carries more than 16 bytes of ciphertext.
  static size_t roundBytes(const Worker&) { return 16; }

  // One record at a time, for as long as the session holds decrypted or buffered bytes:
  // epoll only sees the socket, so nothing may be left inside OpenSSL when we return.
  static void onReadable(Connection& c, Worker& w) {
    if (!c.tls) [[unlikely]] {
      // Taken over by a flush earlier in this event.
      RecordTransport::onReadable(c, w);
      return;
    }
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
      // A hand-over to another worker took the session (and killed this connection). The
      // 101 is written at once (Connection::open): its flush may have taken the session
      // over (c.tls null), which it does only once OpenSSL holds nothing more to read.
    } while (c.state != ConnState::Dead && !c.paused && c.tls && SSL_has_pending(c.tls));
    if (c.tls && c.state == ConnState::Open && c.out.empty()) takeOver(c, w);
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
  static void shutdown(Connection& c, Worker&) { SSL_shutdown(c.tls); }
  // OpenSSL keeps what the socket did not take (and write() is retried with it).
  static bool hasPendingOutput(const Connection&) { return false; }
  // The queue is written: once open, the session may move to our record layer.
  static void afterFlush(Connection& c, Worker& w) {
    if (c.state == ConnState::Open) takeOver(c, w);
  }

  // After the handshake and the 101, a TLS 1.3 session with an AES-GCM or ChaCha20 suite
  // continues on our record layer (RecordTransport) and the OpenSSL session (~13 KB) is
  // freed. Only when nothing is inside it: no record read in part or decrypted and unread,
  // nothing unwritten (the queue is empty), no handshake write pending; else at a later
  // read or flush.
  static void takeOver(Connection& c, Worker& w) {
    if (!c.tls || c.tlsWantsWrite || !tlsRecordsReady(c.tls)) return;
    if (!w.tlsCrypto_) w.tlsCrypto_.reset(new (std::nothrow) TlsRecordCrypto());
    if (!w.tlsCrypto_) return;
    std::unique_ptr<TlsRecordState> r = takeTlsRecords(c.tls);
    if (!r) return;
    // Freed without a word to the peer; marked shut down so that its session stays
    // resumable (OpenSSL drops the sessions of connections that ended otherwise).
    SSL_set_shutdown(c.tls, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(c.tls);
    c.tls = nullptr;
    if (c.hs) c.hs->tlsContext.reset();  // the SNI callback needed it during the handshake only
    c.tlsRecords = r.release();
    w.stats_->add(Counter::TlsRecordLayer);
  }
};

}  // namespace lapps
