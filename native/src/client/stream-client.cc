#include "client/stream-client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/text.h"
#include "client/socket-bio.h"

namespace lapps {

namespace {

// One TLS record of plaintext (16 KiB) fits, so SSL_read never leaves decrypted bytes
// behind in SSL when reading pauses; plain TCP reads benefit from the size too.
constexpr size_t kReadBufferSize = 32 * 1024;
// Reads per readiness event, so one busy stream cannot starve the host's other fds.
constexpr int kMaxReadsPerEvent = 16;
// Queue memory kept after a burst; a larger buffer is released once drained.
constexpr size_t kKeepQueueCapacity = 256 * 1024;

bool isIpLiteral(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string errnoText(const char* what, int err) {
  return concatText({what, ": ", std::strerror(err)});
}

}  // namespace

StreamClient::~StreamClient() {
  if (gone_) *gone_ = true;
  closeNow();
}

bool StreamClient::startConnect(std::string_view host, uint16_t port, const TlsOptions* tls,
                                std::string& err) {
  if (phase_ != Phase::Idle) {
    err = "client already used: create a new one per connection";
    return false;
  }
  if (host.empty() || port == 0) {
    err = "host and port are required";
    return false;
  }
  hostName_.assign(host);
  port_ = port;
  nextAddress_ = 0;
  if (tls && tls->ctx) {
    if (SSL_CTX_up_ref(tls->ctx) != 1) {
      err = "SSL_CTX_up_ref failed";
      return false;
    }
    ctx_ = tls->ctx;
    tlsName_ = tls->serverName.empty() ? hostName_ : tls->serverName;
    sni_ = tls->sni;
    verifyHostname_ = tls->verifyHostname;
  }
  if (resolveWithoutLookup(hostName_, port_, addresses_)) {
    if (!tryNextAddress(err)) {
      closeNow();
      phase_ = Phase::Idle;
      return false;
    }
    return true;
  }
  resolve_ = AsyncResolve::start(hostName_, port_, err);
  if (!resolve_) {
    closeNow();
    phase_ = Phase::Idle;
    return false;
  }
  phase_ = Phase::Resolving;
  host_.watch(resolve_->fd(), EPOLLIN, this);
  return true;
}

// Starts a non-blocking connect to the next address. Even an immediate success waits for
// EPOLLOUT, so the open hook always runs from onIo.
bool StreamClient::tryNextAddress(std::string& err) {
  while (nextAddress_ < addresses_.size()) {
    const SocketAddress& a = addresses_[nextAddress_++];
    fd_ = ::socket(a.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      lastConnectError_ = errnoText("socket", errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_, a.get(), a.len) == 0 || errno == EINPROGRESS) {
      phase_ = Phase::Connecting;
      updateWatch();
      return true;
    }
    lastConnectError_ =
        concatText({"connect to ", formatAddress(a), " failed: ", std::strerror(errno)});
    closeSocket();
  }
  err = lastConnectError_.empty() ? "no address to connect to" : lastConnectError_;
  return false;
}

void StreamClient::onIo(int fd, uint32_t events) {
  Alive alive(this);
  if (resolve_ && fd == resolve_->fd()) {
    onResolved();
    return;
  }
  if (fd != fd_ || fd_ < 0) return;  // stale event for a socket already replaced
  switch (phase_) {
    case Phase::Connecting:
      onConnectEvent(events);
      return;
    case Phase::TlsHandshake:
      continueTls();
      return;
    case Phase::Open:
      onOpenEvent(events);
      return;
    case Phase::Idle:
    case Phase::Resolving:
    case Phase::Closed:
      return;
  }
}

void StreamClient::onResolved() {
  if (!resolve_->done()) return;  // cannot happen: the eventfd is written after the result
  host_.unwatch(resolve_->fd());
  std::string err;
  const bool ok = resolve_->result(addresses_, err);
  resolve_.reset();
  if (!ok || !tryNextAddress(err)) end(std::move(err));
}

void StreamClient::onConnectEvent(uint32_t events) {
  int soErr = 0;
  socklen_t len = sizeof soErr;
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &soErr, &len) != 0) soErr = errno;
  if (soErr == 0) {
    // A stale or spurious wakeup must not pass for a finished connect.
    sockaddr_storage peer;
    socklen_t peerLen = sizeof peer;
    if (getpeername(fd_, reinterpret_cast<sockaddr*>(&peer), &peerLen) != 0) {
      if (errno == ENOTCONN && !(events & (EPOLLERR | EPOLLHUP))) return;
      soErr = errno == ENOTCONN ? ECONNREFUSED : errno;
    }
  }
  if (soErr == 0) {
    if (ctx_) {
      startTls();
    } else {
      becomeOpen();
    }
    return;
  }
  const SocketAddress& a = addresses_[nextAddress_ - 1];
  lastConnectError_ =
      concatText({"connect to ", formatAddress(a), " failed: ", std::strerror(soErr)});
  closeSocket();
  std::string err;
  if (!tryNextAddress(err)) end(std::move(err));
}

void StreamClient::startTls() {
  ERR_clear_error();
  ssl_ = SSL_new(ctx_);
  BIO* bio = ssl_ ? newSocketBio(fd_) : nullptr;
  if (!bio) {
    end(concatText({"TLS setup failed: ", takeSslError("SSL_new")}));
    return;
  }
  SSL_set_bio(ssl_, bio, bio);  // one reference, owned by ssl_ from here
  // Partial writes: SSL_write behaves like write(2), one record at a time, so the queue
  // can be consumed piecewise and may move between retries (it is a growing vector).
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  const bool literal = isIpLiteral(tlsName_);
  if (sni_ && !literal && SSL_set_tlsext_host_name(ssl_, tlsName_.c_str()) != 1) {
    end(concatText({"TLS setup failed: ", takeSslError("cannot set SNI")}));
    return;
  }
  if (verifyHostname_) {
    const int ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), tlsName_.c_str())
                           : SSL_set1_host(ssl_, tlsName_.c_str());
    if (ok != 1) {
      end(concatText({"TLS setup failed: ", takeSslError("cannot set the verification name")}));
      return;
    }
  }
  SSL_set_connect_state(ssl_);
  phase_ = Phase::TlsHandshake;
  continueTls();
}

void StreamClient::continueTls() {
  ERR_clear_error();
  const int r = SSL_connect(ssl_);
  const int sysErr = errno;  // before anything else can change it
  if (r == 1) {
    becomeOpen();
    return;
  }
  const int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    tlsWant_ = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
    updateWatch();
    return;
  }
  const long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK && (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER)) {
    ERR_clear_error();
    end(concatText(
        {"TLS certificate verification failed: ", X509_verify_cert_error_string(verify)}));
    return;
  }
  if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    end(sysErr ? errnoText("TLS handshake failed", sysErr)
               : "TLS handshake failed: connection closed by the server");
    return;
  }
  end(concatText({"TLS handshake failed: ", takeSslError("unknown error")}));
}

void StreamClient::becomeOpen() {
  phase_ = Phase::Open;
  if (!readBuf_) readBuf_.reset(new uint8_t[kReadBufferSize]);
  // The server may have sent application data together with its last handshake flight.
  if (ssl_ && SSL_pending(ssl_) > 0) kick_ = true;
  flush();  // what was queued before the stream opened goes first
  Alive alive(this);
  onStreamOpen();
  if (!alive || phase_ != Phase::Open) return;
  updateWatch();
}

void StreamClient::onOpenEvent(uint32_t events) {
  Alive alive(this);
  if ((events & EPOLLOUT) || (writeWantsRead_ && (events & EPOLLIN))) flush();
  if (phase_ != Phase::Open) return;
  const bool readable = (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ||
                        (readWantsWrite_ && (events & EPOLLOUT)) || (kick_ && (events & EPOLLOUT));
  kick_ = false;
  if (readable && !readPaused_) {
    readSome(alive);
    if (!alive || phase_ != Phase::Open) return;
  } else if (readPaused_ && (events & (EPOLLERR | EPOLLHUP))) {
    // Level-triggered HUP/ERR would fire forever while we may not read: report a socket
    // error now; leave a hang-up (which may follow unread data) until reading resumes.
    int soErr = 0;
    socklen_t len = sizeof soErr;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &soErr, &len);
    if (soErr != 0) {
      end(errnoText("connection error", soErr));
      return;
    }
    peerHungUp_ = true;
  }
  if (!pendingError_.empty()) {
    end(std::string());
    return;
  }
  updateWatch();
}

void StreamClient::readSome(const Alive& alive) {
  uint8_t* buf = readBuf_.get();
  for (int i = 0; i < kMaxReadsPerEvent && !readPaused_; ++i) {
    size_t n;
    if (ssl_) {
      ERR_clear_error();
      const int r = SSL_read(ssl_, buf, static_cast<int>(kReadBufferSize));
      if (r <= 0) {
        const int sysErr = errno;
        const int e = SSL_get_error(ssl_, r);
        readWantsWrite_ = e == SSL_ERROR_WANT_WRITE;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
        // EOF: close_notify, or TCP closed without one (see SSL_OP_IGNORE_UNEXPECTED_EOF in
        // tls-context.cc; a caller's own context may lack it).
        const unsigned long queued = ERR_peek_error();
        const bool eof =
            e == SSL_ERROR_ZERO_RETURN ||
            (e == SSL_ERROR_SYSCALL && queued == 0 && (sysErr == 0 || !pendingError_.empty())) ||
            (e == SSL_ERROR_SSL && ERR_GET_REASON(queued) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
        if (eof) {
          ERR_clear_error();
          end(std::string());
        } else if (e == SSL_ERROR_SYSCALL && queued == 0) {
          end(errnoText("read failed", sysErr));
        } else {
          end(concatText({"TLS read failed: ", takeSslError("unknown error")}));
        }
        return;
      }
      readWantsWrite_ = false;
      n = static_cast<size_t>(r);
    } else {
      const ssize_t r = ::recv(fd_, buf, kReadBufferSize, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        end(errnoText("read failed", errno));
        return;
      }
      if (r == 0) {
        end(std::string());
        return;
      }
      n = static_cast<size_t>(r);
    }
    onStreamData(buf, n);
    if (!alive || phase_ != Phase::Open) return;
    if (!ssl_ && n < kReadBufferSize) return;  // drained: skip the EAGAIN round trip
  }
}

uint8_t* StreamClient::appendOut(size_t n) {
  const size_t at = out_.size();
  out_.resize(at + n);
  return out_.data() + at;
}

void StreamClient::flush() {
  if (phase_ != Phase::Open || !pendingError_.empty()) return;
  while (outHead_ < out_.size()) {
    const uint8_t* p = out_.data() + outHead_;
    const size_t n = out_.size() - outHead_;
    if (ssl_) {
      ERR_clear_error();
      const int w = SSL_write(ssl_, p, static_cast<int>(n < (1u << 30) ? n : (1u << 30)));
      const int sysErr = errno;
      if (w > 0) {
        outHead_ += static_cast<size_t>(w);
        writeWantsRead_ = false;
        continue;
      }
      const int e = SSL_get_error(ssl_, w);
      writeWantsRead_ = e == SSL_ERROR_WANT_READ;
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
      deferError(e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0
                     ? errnoText("write failed", sysErr)
                     : concatText({"TLS write failed: ", takeSslError("unknown error")}));
      return;
    }
    const ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
    if (w >= 0) {
      outHead_ += static_cast<size_t>(w);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    deferError(errnoText("write failed", errno));
    return;
  }
  if (outHead_ == out_.size()) {
    out_.clear();
    outHead_ = 0;
    if (out_.capacity() > kKeepQueueCapacity) std::vector<uint8_t>().swap(out_);
    if (shutdownRequested_ && !shutdownSent_) sendShutdown();
  } else if (outHead_ >= kKeepQueueCapacity && outHead_ * 2 >= out_.size()) {
    // Drop the written front once it is most of the buffer, so memory tracks the backlog.
    out_.erase(out_.begin(), out_.begin() + static_cast<ptrdiff_t>(outHead_));
    outHead_ = 0;
  }
  updateWatch();
}

void StreamClient::shutdownAfterFlush() {
  shutdownRequested_ = true;
  flush();
}

void StreamClient::sendShutdown() {
  if (ssl_) {
    ERR_clear_error();
    const int r = SSL_shutdown(ssl_);
    if (r < 0 && SSL_get_error(ssl_, r) == SSL_ERROR_WANT_WRITE) return;  // retried on EPOLLOUT
    ERR_clear_error();  // a failed close_notify is no reason to fail the stream
  }
  ::shutdown(fd_, SHUT_WR);
  shutdownSent_ = true;
}

void StreamClient::setReadPaused(bool paused) {
  if (paused == readPaused_) return;
  readPaused_ = paused;
  if (!paused) {
    peerHungUp_ = false;
    if (ssl_ && SSL_pending(ssl_) > 0) kick_ = true;
  }
  updateWatch();
}

void StreamClient::deferError(std::string error) {
  pendingError_ = std::move(error);
  // Both directions shut: epoll reports EPOLLHUP right away, and onIo reports the error.
  ::shutdown(fd_, SHUT_RDWR);
  out_.clear();
  outHead_ = 0;
  updateWatch();
}

void StreamClient::end(std::string error) {
  if (error.empty()) error = std::move(pendingError_);
  closeNow();
  onStreamEnd(error);
}

void StreamClient::closeSocket() {
  if (fd_ < 0) return;
  if (watching_) host_.unwatch(fd_);
  watching_ = false;
  watched_ = 0;
  ::close(fd_);
  fd_ = -1;
}

void StreamClient::closeNow() {
  if (resolve_) {
    if (phase_ == Phase::Resolving) host_.unwatch(resolve_->fd());
    resolve_.reset();
  }
  if (ssl_) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  closeSocket();
  if (ctx_) {
    SSL_CTX_free(ctx_);
    ctx_ = nullptr;
  }
  std::vector<uint8_t>().swap(out_);
  outHead_ = 0;
  phase_ = Phase::Closed;
}

void StreamClient::updateWatch() {
  if (fd_ < 0) return;
  uint32_t ev = 0;
  switch (phase_) {
    case Phase::Connecting:
      ev = EPOLLOUT;
      break;
    case Phase::TlsHandshake:
      ev = tlsWant_;
      break;
    case Phase::Open: {
      if (readPaused_ && peerHungUp_) {
        // Nothing can be done until reading resumes; HUP would otherwise spin the loop.
        if (watching_) host_.unwatch(fd_);
        watching_ = false;
        return;
      }
      const bool pendingOut = outHead_ < out_.size() || (shutdownRequested_ && !shutdownSent_);
      if (!readPaused_ || writeWantsRead_) ev |= EPOLLIN;
      if ((pendingOut && !writeWantsRead_) || readWantsWrite_ || kick_) ev |= EPOLLOUT;
      break;
    }
    case Phase::Idle:
    case Phase::Resolving:
    case Phase::Closed:
      return;
  }
  if (watching_ && ev == watched_) return;
  host_.watch(fd_, ev, this);
  watching_ = true;
  watched_ = ev;
}

}  // namespace lapps
