// TLS for the outbound clients: a helper that builds a client SSL_CTX, and the per-
// connection options (SNI, hostname verification) that go with it.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

namespace lapps {

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

struct TlsContextOptions {
  bool verifyPeer = true;  // off: any certificate is accepted (tests, private networks)
  std::string caFile;      // PEM bundle trusted in addition to the system's default paths
};

// A client context: TLS 1.2+, the system's default trust store plus caFile, peer
// verification as asked. Returns null and sets err on failure (e.g. unreadable caFile).
// One context serves any number of connections, on any thread.
SslCtxPtr makeClientTlsContext(const TlsContextOptions& opts, std::string& err);

// Per-connection TLS settings. connect() takes the client's own reference to ctx (ctx must
// be valid until then); the caller may release its one right after.
struct TlsOptions {
  SSL_CTX* ctx = nullptr;
  std::string serverName;      // SNI and verification name; empty: the host connected to
  bool sni = true;             // send SNI (never for IP literals, RFC 6066 §3)
  bool verifyHostname = true;  // certificate must match serverName (DNS name or IP SAN)
};

// Text of the first error on this thread's OpenSSL error queue (which it clears), or
// `fallback` when the queue is empty.
std::string takeSslError(const char* fallback);

}  // namespace lapps
