// Reading the PEM files of a TLS server: a certificate chain with its key and the names
// it answers, and the CA bundle that verifies client certificates. Files are read whole and
// parsed from memory, so every error can name its file; nothing ever prompts for a
// passphrase.
#pragma once

#include <openssl/x509.h>

#include <string>
#include <vector>

#include "security/openssl-ptr.h"
#include "security/tls-server.h"

namespace lapps {

struct ServerCertificate {
  X509Ptr leaf;
  std::vector<X509Ptr> intermediates;
  EvpPkeyPtr key;
  std::vector<std::string> names;  // lower case; wildcards as "*.example.com"
};

// Loads s.certFile and s.keyFile, checks that they match, and settles the names: s.serverNames
// or, when empty, the certificate's own. Only the default certificate may have no names.
bool loadServerCertificate(const TlsCertificateSettings& s, bool isDefault, ServerCertificate& c,
                           std::string& error);

// "<certFile>: name, name; notAfter 2027-01-31T12:00:00Z" (and " (expired)").
std::string describeCertificate(const std::string& certFile, const ServerCertificate& c);

// The trust store for client certificates and the CA names sent in CertificateRequest.
struct CaBundle {
  X509StorePtr store{X509_STORE_new()};
  STACK_OF(X509_NAME) * names = sk_X509_NAME_new_null();

  CaBundle() = default;
  CaBundle(const CaBundle&) = delete;
  CaBundle& operator=(const CaBundle&) = delete;
  ~CaBundle();
};

// Loads every certificate in a PEM bundle into ca (at least one).
bool loadCaBundle(const std::string& path, CaBundle& ca, std::string& error);

}  // namespace lapps
