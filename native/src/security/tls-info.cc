#include "security/tls-info.h"

#include <memory>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

namespace lapps {

namespace {

std::string nameText(const X509_NAME* name) {
  if (!name) return {};
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio) return {};
  // RFC 2253 order and escaping, UTF-8 as is (not \-escaped).
  if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
    return {};
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return len > 0 ? std::string(data, size_t(len)) : std::string();
}

std::string fingerprintOf(const X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!X509_digest(cert, EVP_sha256(), md, &len)) return {};
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(len * 3);
  for (unsigned i = 0; i < len; ++i) {
    if (i) out.push_back(':');
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

}  // namespace

TlsInfo describeTls(SSL* ssl) {
  TlsInfo info;
  if (const char* v = SSL_get_version(ssl)) info.version = v;
  if (const char* c = SSL_get_cipher_name(ssl)) info.cipher = c;
  if (const char* s = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) info.sni = s;
  std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(ssl), &X509_free);
  if (cert) {
    info.clientCert = true;
    info.subject = nameText(X509_get_subject_name(cert.get()));
    info.issuer = nameText(X509_get_issuer_name(cert.get()));
    info.fingerprint = fingerprintOf(cert.get());
  }
  return info;
}

}  // namespace lapps
