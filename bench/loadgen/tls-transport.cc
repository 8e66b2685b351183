#include "tls-transport.h"

#include <openssl/err.h>
#include <openssl/objects.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace loadgen {
namespace {

constexpr const char* kServerName = "localhost";
constexpr unsigned char kAlpn[] = "\x08http/1.1";  // length-prefixed protocol list
// With read-ahead, one read(2) fills this much of OpenSSL's buffer: a burst of records
// (pipelined echoes) costs one syscall, not two per record (header, then body).
constexpr size_t kReadBuffer = 64 * 1024;

// The reason of the oldest error on OpenSSL's queue, or what errno says; clears the queue.
std::string lastError() {
  unsigned long e = ERR_get_error();
  std::string why;
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    why = buf;
  } else {
    why = errno ? std::strerror(errno) : "connection closed";
  }
  ERR_clear_error();
  return why;
}

}  // namespace

TlsTransport::~TlsTransport() {
  for (Session& s : sessions_) SSL_free(s.ssl);
  SSL_SESSION_free(latest_);
  SSL_CTX_free(ctx_);
}

bool TlsTransport::init(const Options& o) {
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) {
    std::fprintf(stderr, "lapps-loadgen: SSL_CTX_new: %s\n", lastError().c_str());
    return false;
  }
  resume_ = o.tlsResume;
  sessions_.resize(o.connections);
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  // Partial writes: SSL_write returns after each whole record, so a blocked socket leaves
  // the unsent rest in the caller's queue, which (moving buffer) may be a different
  // allocation when the write is retried.
  long mode = SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
  // Idle connections should not each keep their record buffers (the 64 KiB read buffer
  // and a ~17 KiB write one); busy ones should, rather than allocate per read.
  if (o.mode == Mode::kIdle) mode |= SSL_MODE_RELEASE_BUFFERS;
  SSL_CTX_set_mode(ctx_, mode);
  // A peer that drops TCP without close_notify is an EOF, as on the plain path.
  uint64_t options = SSL_OP_IGNORE_UNEXPECTED_EOF;
  if (resume_) {
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx_, onNewSession);
    SSL_CTX_set_app_data(ctx_, this);
  } else {
    // Nothing kept, no TLS 1.2 ticket asked for; TLS 1.3 tickets a server sends anyway
    // (its cost, as with any client) are read and dropped.
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
    options |= SSL_OP_NO_TICKET;
  }
  SSL_CTX_set_options(ctx_, options);
  SSL_CTX_set_read_ahead(ctx_, 1);
  SSL_CTX_set_default_read_buffer_len(ctx_, kReadBuffer);
  if (SSL_CTX_set_alpn_protos(ctx_, kAlpn, sizeof kAlpn - 1) != 0) {  // 0 is success here
    std::fprintf(stderr, "lapps-loadgen: ALPN: %s\n", lastError().c_str());
    return false;
  }
  return true;
}

int TlsTransport::onNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<TlsTransport*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  SSL_SESSION_free(self->latest_);
  self->latest_ = session;
  return 1;  // we keep the reference
}

long TlsTransport::onSocketIo(BIO* bio, int op, const char*, size_t len, int, long, int ret,
                              size_t* processed) {
  if (op == (BIO_CB_READ | BIO_CB_RETURN)) {
    auto* s = reinterpret_cast<Session*>(BIO_get_callback_arg(bio));
    s->socketDrained = ret <= 0 || *processed < len;
  }
  return ret;
}

int TlsTransport::handshake(Conn& c) {
  Session& s = sessions_[c.index];
  if (s.ssl == nullptr) {
    s.ssl = SSL_new(ctx_);
    if (s.ssl == nullptr || SSL_set_fd(s.ssl, c.fd) != 1 ||
        SSL_set_tlsext_host_name(s.ssl, kServerName) != 1) {
      if (!reportedFailure_) {
        reportedFailure_ = true;
        std::fprintf(stderr, "lapps-loadgen: TLS setup: %s\n", lastError().c_str());
      }
      return -1;
    }
    SSL_set_connect_state(s.ssl);
    // sessions_ never reallocates after init(), so &s stays valid for the session's life.
    BIO* rbio = SSL_get_rbio(s.ssl);
    BIO_set_callback_ex(rbio, onSocketIo);
    BIO_set_callback_arg(rbio, reinterpret_cast<char*>(&s));
    if (resume_ && latest_ != nullptr) SSL_set_session(s.ssl, latest_);
  }
  errno = 0;
  int r = SSL_connect(s.ssl);
  if (r == 1) {
    completed(s.ssl);
    return 1;
  }
  int e = SSL_get_error(s.ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  std::string why = lastError();
  if (!reportedFailure_) {
    reportedFailure_ = true;  // one line: a broken setup fails every connection alike
    std::fprintf(stderr, "lapps-loadgen: TLS handshake failed: %s\n", why.c_str());
  }
  return -1;
}

void TlsTransport::completed(SSL* ssl) {
  ++handshakes_;
  if (SSL_session_reused(ssl)) ++resumed_;
  if (handshakes_ > 1) return;
  protocol_ = SSL_get_version(ssl);
  cipher_ = SSL_CIPHER_get_name(SSL_get_current_cipher(ssl));
  // The key exchange: X25519 by default, the costliest step of a full handshake.
  int nid = SSL_get_negotiated_group(ssl);
  const char* group = nid > 0 ? OBJ_nid2sn(nid) : nullptr;
  group_ = group ? group : "";
  const unsigned char* alpn = nullptr;
  unsigned int alpnLen = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpnLen);
  alpn_.assign(reinterpret_cast<const char*>(alpn), alpnLen);
}

ssize_t TlsTransport::failed(Session& s, int ret, bool reading) {
  switch (SSL_get_error(s.ssl, ret)) {
    case SSL_ERROR_WANT_READ:
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_WANT_WRITE:
      if (reading) s.readWantsWrite = true;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:  // close_notify, or (IGNORE_UNEXPECTED_EOF) a bare FIN
      if (reading) return 0;
      errno = EPIPE;
      return -1;
    case SSL_ERROR_SYSCALL:
      ERR_clear_error();
      // The socket's own error; retryable ones never get here (OpenSSL says WANT_*).
      if (errno == 0 || errno == EAGAIN || errno == EINTR) errno = EIO;
      return -1;
    default:  // SSL_ERROR_SSL: a bad record, an alert
      ERR_clear_error();
      errno = EPROTO;
      return -1;
  }
}

ssize_t TlsTransport::read(Conn& c, void* buf, size_t n) {
  Session& s = sessions_[c.index];
  s.readWantsWrite = false;
  errno = 0;
  int r = SSL_read(s.ssl, buf, n > INT_MAX ? INT_MAX : int(n));
  return r > 0 ? r : failed(s, r, true);
}

ssize_t TlsTransport::write(Conn& c, const void* p, size_t n) {
  Session& s = sessions_[c.index];
  const auto* bytes = static_cast<const uint8_t*>(p);
  size_t done = 0;
  // Partial-write mode returns after each record: go on until the socket is full.
  while (done < n) {
    size_t left = n - done;
    errno = 0;
    int w = SSL_write(s.ssl, bytes + done, left > INT_MAX ? INT_MAX : int(left));
    if (w <= 0) {
      ssize_t f = failed(s, w, false);
      // Records already written count; the rest is retried from the same offset, which
      // is where OpenSSL's half-sent record starts.
      if (done > 0 && errno == EAGAIN) return ssize_t(done);
      return f;
    }
    done += size_t(w);
  }
  return ssize_t(done);
}

ssize_t TlsTransport::writev(Conn& c, const iovec* iov, int n) {
  if (n == 1) return write(c, iov[0].iov_base, iov[0].iov_len);
  gather_.clear();
  for (int i = 0; i < n; ++i) {
    const auto* b = static_cast<const uint8_t*>(iov[i].iov_base);
    gather_.insert(gather_.end(), b, b + iov[i].iov_len);
  }
  return write(c, gather_.data(), gather_.size());
}

void TlsTransport::release(Conn& c) {
  Session& s = sessions_[c.index];
  SSL_free(s.ssl);
  s = Session{};
}

void TlsTransport::printJson(FILE* out) const {
  std::fprintf(out,
               ",\"tls\":{\"protocol\":\"%s\",\"cipher\":\"%s\",\"group\":\"%s\","
               "\"alpn\":\"%s\","
               "\"handshakes\":%llu,\"resumed\":%llu,\"resume\":%s}",
               protocol_.c_str(), cipher_.c_str(), group_.c_str(), alpn_.c_str(),
               static_cast<unsigned long long>(handshakes_),
               static_cast<unsigned long long>(resumed_), resume_ ? "true" : "false");
}

}  // namespace loadgen
