// What a service may know of a connection's TLS session at connect time (onConnect's
// request.tls): the protocol, the cipher, the SNI name, and the client certificate when one
// was sent (the server asks for one with tls.client_cert "optional" or "require"; it was
// verified against tls.ca before the HTTP request could arrive).
#pragma once

#include <string>

#include <openssl/ssl.h>

namespace lapps {

struct TlsInfo {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // OpenSSL's name: "TLS_AES_256_GCM_SHA384"
  std::string sni;      // the server name the client asked for; empty if none
  bool clientCert = false;
  // RFC 2253 distinguished names ("CN=alice,O=Example") and the SHA-256 fingerprint of the
  // DER certificate as uppercase hex pairs joined by ':' (as `openssl x509 -fingerprint
  // -sha256` and Node's `fingerprint256` print it).
  std::string subject, issuer, fingerprint;
};

// Reads the established session `ssl`.
TlsInfo describeTls(SSL* ssl);

}  // namespace lapps
