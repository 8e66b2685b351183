#include "test-pki.h"

#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>

namespace lapps::test {

namespace {

EVP_PKEY* makeKey(KeyType type) {
  switch (type) {
    case KeyType::Ec:
      return EVP_EC_gen("P-256");
    case KeyType::Rsa:
      return EVP_RSA_gen(2048);
    case KeyType::Ed25519:
      return EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  }
  return nullptr;
}

bool addExt(X509* cert, X509V3_CTX& v3, const char* name, const std::string& value) {
  X509_EXTENSION* x = X509V3_EXT_nconf(nullptr, &v3, name, value.c_str());
  if (!x) return false;
  const bool ok = X509_add_ext(cert, x, -1) == 1;
  X509_EXTENSION_free(x);
  return ok;
}

// A certificate for `key`, signed by issuerKey (Ed25519 signs without a digest).
X509* makeCert(EVP_PKEY* key, const std::string& cn, long notBefore, long notAfter,
               X509* issuerCert, EVP_PKEY* issuerKey,
               const std::vector<std::pair<const char*, std::string>>& exts) {
  static long serial = 1;
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), notBefore);
  X509_gmtime_adj(X509_getm_notAfter(cert), notAfter);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("lapps tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, issuerCert ? X509_get_subject_name(issuerCert) : name);
  X509_set_pubkey(cert, key);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuerCert ? issuerCert : cert, cert, nullptr, nullptr, 0);
  bool ok = true;
  for (const auto& [ext, value] : exts) ok = ok && addExt(cert, v3, ext, value);
  const EVP_MD* md = EVP_PKEY_get_id(issuerKey) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (!ok || X509_sign(cert, issuerKey, md) == 0) {
    X509_free(cert);
    return nullptr;
  }
  return cert;
}

bool writePem(const std::string& path, const std::vector<X509*>& certs, EVP_PKEY* key) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return false;
  bool ok = true;
  for (X509* c : certs) ok = ok && PEM_write_X509(f, c) == 1;
  if (key) ok = ok && PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  return std::fclose(f) == 0 && ok;
}

}  // namespace

TestPki::TestPki() {
  char tmpl[] = "/tmp/lapps-tls-test-XXXXXX";
  if (!mkdtemp(tmpl)) return;
  dir_ = tmpl;
  if (!makeCa(root_, "lapps test root", nullptr) ||
      !makeCa(intermediate_, "lapps test intermediate", &root_) ||
      !makeCa(rogue_, "lapps rogue root", nullptr))
    return;
  rootFile_ = dir_ + "/root.crt";
  rogueFile_ = dir_ + "/rogue.crt";
  ok_ = writePem(rootFile_, {root_.cert}, nullptr) && writePem(rogueFile_, {rogue_.cert}, nullptr);
}

TestPki::~TestPki() {
  for (Ca* ca : {&root_, &intermediate_, &rogue_}) {
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
  }
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

bool TestPki::makeCa(Ca& ca, const char* cn, const Ca* issuer) {
  ca.key = makeKey(KeyType::Ec);
  if (!ca.key) return false;
  ca.cert = makeCert(ca.key, cn, -86400, 10 * 86400, issuer ? issuer->cert : nullptr,
                     issuer ? issuer->key : ca.key,
                     {{"basicConstraints", "critical,CA:TRUE"},
                      {"keyUsage", "critical,keyCertSign,cRLSign"},
                      {"subjectKeyIdentifier", "hash"}});
  return ca.cert != nullptr;
}

CertFiles TestPki::issue(const std::string& name, const CertSpec& spec) {
  EVP_PKEY* key = makeKey(spec.key);
  if (!key) return {};
  std::vector<std::pair<const char*, std::string>> exts = {
      {"basicConstraints", "critical,CA:FALSE"},
      {"extendedKeyUsage", spec.client ? "clientAuth" : "serverAuth"}};
  std::string san;
  for (const std::string& d : spec.dns) san.append(san.empty() ? "DNS:" : ",DNS:").append(d);
  if (!san.empty()) exts.emplace_back("subjectAltName", san);
  const Ca* ca = spec.issuer == Issuer::Root           ? &root_
                 : spec.issuer == Issuer::Intermediate ? &intermediate_
                 : spec.issuer == Issuer::Rogue        ? &rogue_
                                                       : nullptr;
  X509* cert = makeCert(key, spec.cn, spec.notBefore, spec.notAfter, ca ? ca->cert : nullptr,
                        ca ? ca->key : key, exts);
  CertFiles files{dir_ + "/" + name + ".crt", dir_ + "/" + name + ".key"};
  std::vector<X509*> chain = {cert};
  if (spec.issuer == Issuer::Intermediate) chain.push_back(intermediate_.cert);
  const bool ok = cert && writePem(files.cert, chain, nullptr) && writePem(files.key, {}, key);
  X509_free(cert);
  EVP_PKEY_free(key);
  return ok ? files : CertFiles{};
}

std::string TestPki::writeText(const std::string& name, const std::string& text) {
  const std::string path = dir_ + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return "";
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  return path;
}

std::string TestPki::writeEncryptedKey(const std::string& name, const std::string& keyFile) {
  std::FILE* in = std::fopen(keyFile.c_str(), "r");
  if (!in) return "";
  EVP_PKEY* key = PEM_read_PrivateKey(in, nullptr, nullptr, nullptr);
  std::fclose(in);
  const std::string path = dir_ + "/" + name;
  std::FILE* out = std::fopen(path.c_str(), "w");
  char pass[] = "secret";
  const bool ok =
      key && out &&
      PEM_write_PrivateKey(out, key, EVP_aes_256_cbc(), reinterpret_cast<unsigned char*>(pass), 6,
                           nullptr, nullptr) == 1;
  if (out) std::fclose(out);
  EVP_PKEY_free(key);
  return ok ? path : "";
}

}  // namespace lapps::test
