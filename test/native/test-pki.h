// Certificates for the TLS tests, made in-process with OpenSSL (no openssl CLI, no key
// material in the tree): two unrelated root CAs, an intermediate, and leaves issued by any
// of them, written as PEM files into a temporary directory removed at destruction.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

namespace lapps::test {

enum class KeyType { Ec, Rsa, Ed25519 };
enum class Issuer { Root, Intermediate, Rogue, Self };

struct CertSpec {
  std::string cn{};
  std::vector<std::string> dns{};  // subjectAltName DNS names (none: no subjectAltName)
  bool client = false;             // clientAuth EKU instead of serverAuth
  long notBefore = -3600;          // seconds from now
  long notAfter = 86400;
  KeyType key = KeyType::Ec;
  Issuer issuer = Issuer::Root;
};

struct CertFiles {
  std::string cert;  // the leaf, then the intermediate when it issued the leaf
  std::string key;
};

class TestPki {
 public:
  TestPki();
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  bool ok() const { return ok_; }
  const std::string& dir() const { return dir_; }
  const std::string& rootFile() const { return rootFile_; }    // trusted by the tests
  const std::string& rogueFile() const { return rogueFile_; }  // a CA nobody trusts

  // Writes <name>.crt and <name>.key; empty paths on failure.
  CertFiles issue(const std::string& name, const CertSpec& spec);
  // Writes `text` to <name> and returns its path.
  std::string writeText(const std::string& name, const std::string& text);
  // Writes `key` encrypted with a passphrase to <name> and returns its path.
  std::string writeEncryptedKey(const std::string& name, const std::string& keyFile);

 private:
  struct Ca {
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
  };
  bool makeCa(Ca& ca, const char* cn, const Ca* issuer);

  bool ok_ = false;
  std::string dir_, rootFile_, rogueFile_;
  Ca root_, intermediate_, rogue_;
};

}  // namespace lapps::test
