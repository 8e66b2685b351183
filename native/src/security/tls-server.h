// The server side of TLS: one SSL_CTX per configured certificate, built from settings and
// never changed afterwards; SNI picks the certificate, ALPN insists on http/1.1, and client
// certificates are checked against a CA file. The worker drives the sessions (SSL_read /
// SSL_write on non-blocking sockets); this file only builds and holds the contexts.
//
// Threading: create() runs on any thread (the Node main thread, also on reload) while
// workers use older contexts; a TlsServerContext is immutable, so newSession() and
// describe() may be called from any thread at once.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lapps {

struct TlsCertificateSettings {
  std::string certFile{};  // PEM: the leaf first, then intermediates (a chain file)
  std::string keyFile{};   // PEM private key (RSA, EC or Ed25519), unencrypted
  // SNI names it answers; empty: the DNS names in its subjectAltName (the CN if it has none).
  // "*.example.com" matches exactly one label in place of the '*'. Only the default
  // certificate may end up with no name.
  std::vector<std::string> serverNames{};
};

enum class ClientCertMode : uint8_t { None, Optional, Require };

// The `{}` initializers let callers use designated initializers under -Wextra.
struct TlsSettings {
  // At least one; the first is the default (no SNI, or no name matched).
  std::vector<TlsCertificateSettings> certificates{};
  // PEM bundle verifying client certificates; required unless None (and checked even then).
  std::string caFile{};
  ClientCertMode clientCert = ClientCertMode::None;
  int minVersion = TLS1_2_VERSION;  // TLS1_2_VERSION or TLS1_3_VERSION
  std::string ciphers{};            // TLS <= 1.2 (OpenSSL syntax); empty: ECDHE with AEAD only
  std::string ciphersuites{};       // TLS 1.3; empty: OpenSSL's default
};

class TlsServerContext {
 public:
  // The one application protocol offered over ALPN: WebSocket upgrades are HTTP/1.1.
  static constexpr std::string_view kAlpn = "http/1.1";

  // Loads every file and builds one SSL_CTX per certificate. Returns null with `error` set
  // (naming the file or setting and OpenSSL's reason) when anything is unusable.
  static std::shared_ptr<TlsServerContext> create(const TlsSettings& settings, std::string& error);

  // A server session on the non-blocking socket fd (not owned): accept state, default
  // certificate until SNI says otherwise. The caller drives it with SSL_do_handshake /
  // SSL_read / SSL_write and frees it. The session holds references to everything its
  // handshake needs (contexts and SNI table), so it may outlive this object, e.g. across a
  // reload. Null on allocation failure (the reason is on OpenSSL's error queue).
  // An EOF without close_notify reads as SSL_ERROR_ZERO_RETURN (SSL_OP_IGNORE_UNEXPECTED_EOF):
  // the WebSocket close handshake is what detects truncation.
  SSL* newSession(int fd) const;

  // One line per certificate for logs and tests: its file, the names it answers and its
  // notAfter date, e.g. "cert.pem: example.com, *.example.com; notAfter 2027-01-31T12:00:00Z".
  std::vector<std::string> describe() const;

  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

 private:
  TlsServerContext() = default;

  std::vector<SSL_CTX*> contexts_;  // owned references; [0] is the default
  std::vector<std::string> descriptions_;
};

// Drains this thread's OpenSSL error queue into one line ("reason: reason ..."), or returns
// `fallback` when it is empty.
std::string tlsErrorText(std::string_view fallback = "unknown error");

}  // namespace lapps
