#include "security/dev-cert.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "base/text.h"
#include "security/openssl-ptr.h"
#include "security/tls-server.h"

namespace lapps {

namespace {

constexpr int kMaxDays = 3650;

// An end-entity certificate that is its own trust anchor: CA:TRUE would make Firefox refuse
// it as a server certificate (CA_CERT_USED_AS_END_ENTITY). ECDSA needs digitalSignature only.
constexpr const char* kExtensions[][2] = {
    {"basicConstraints", "critical,CA:FALSE"},
    {"keyUsage", "critical,digitalSignature"},
    {"extendedKeyUsage", "serverAuth"},
    {"subjectAltName", "DNS:localhost,IP:127.0.0.1,IP:::1"},
    {"subjectKeyIdentifier", "hash"},
};

bool setRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return false;
  bytes[0] &= 0x7F;  // positive, at most 20 octets (RFC 5280 §4.1.2.2)
  bytes[0] |= 0x40;  // and no leading zero octet
  BIGNUM* bn = BN_bin2bn(bytes, sizeof bytes, nullptr);
  const bool ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  return ok;
}

bool addName(X509_NAME* name, const char* field, const char* value) {
  return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(value), -1, -1, 0) == 1;
}

// The key and certificate as PEM text; false with OpenSSL's reason on failure.
bool makePem(int days, std::string& certPem, std::string& keyPem, std::string& error) {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  X509Ptr cert(X509_new());
  bool ok = key && cert && X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
            setRandomSerial(cert.get()) &&
            X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0) != nullptr &&
            X509_time_adj_ex(X509_getm_notAfter(cert.get()), days, 0, nullptr) != nullptr;
  X509_NAME* name = ok ? X509_get_subject_name(cert.get()) : nullptr;
  ok = ok && addName(name, "O", "lapps development") && addName(name, "CN", "localhost") &&
       X509_set_issuer_name(cert.get(), name) == 1 && X509_set_pubkey(cert.get(), key.get()) == 1;
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [field, value] : kExtensions) {
    X509_EXTENSION* ext = ok ? X509V3_EXT_nconf(nullptr, &v3, field, value) : nullptr;
    ok = ext && X509_add_ext(cert.get(), ext, -1) == 1;
    X509_EXTENSION_free(ext);
  }
  ok = ok && X509_sign(cert.get(), key.get(), EVP_sha256()) != 0;
  BioPtr certBio(BIO_new(BIO_s_mem())), keyBio(BIO_new(BIO_s_mem()));
  ok =
      ok && certBio && keyBio && PEM_write_bio_X509(certBio.get(), cert.get()) == 1 &&
      PEM_write_bio_PrivateKey(keyBio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
  if (!ok) {
    error = concatText({"cannot make a development certificate: ", tlsErrorText()});
    return false;
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(certBio.get(), &data);
  certPem.assign(data, static_cast<size_t>(n));
  n = BIO_get_mem_data(keyBio.get(), &data);
  keyPem.assign(data, static_cast<size_t>(n));
  return true;
}

std::string errnoText() {
  return std::generic_category().message(errno);
}

bool writeAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Writes `data` to a new file: `path` itself (O_EXCL) or, to replace it, a temporary file
// beside it. Returns the path written, "" with `error` on failure (nothing left behind).
std::string writeNew(const std::string& path, const std::string& data, mode_t mode, bool beside,
                     std::string& error) {
  std::string target = path;
  int fd;
  if (beside) {
    target.append(".XXXXXX");
    fd = ::mkostemp(target.data(), O_CLOEXEC);
  } else {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  }
  if (fd < 0) {
    error = errno == EEXIST ? concatText({path, " already exists (not overwritten)"})
                            : concatText({"cannot create ", target, ": ", errnoText()});
    return "";
  }
  // fchmod: the mode asked for, whatever the umask or mkstemp chose.
  const bool ok = ::fchmod(fd, mode) == 0 && writeAll(fd, data);
  const int e = errno;
  if (::close(fd) != 0 || !ok) {
    error = concatText(
        {"cannot write ", target, ": ", std::generic_category().message(ok ? errno : e)});
    ::unlink(target.c_str());
    return "";
  }
  return target;
}

}  // namespace

bool writeDevCertificate(const std::string& certFile, const std::string& keyFile, int days,
                         bool overwrite, std::string& error) {
  if (days < 1 || days > kMaxDays) {
    error = concatText({"development certificate: days must be 1 to ", std::to_string(kMaxDays)});
    return false;
  }
  if (certFile.empty() || keyFile.empty() || certFile == keyFile) {
    error = "development certificate: the certificate and key need two different files";
    return false;
  }
  struct stat st;
  if (!overwrite) {
    for (const std::string* f : {&certFile, &keyFile})
      if (::lstat(f->c_str(), &st) == 0) {
        error = concatText({*f, " already exists (not overwritten)"});
        return false;
      }
  }
  std::string certPem, keyPem;
  if (!makePem(days, certPem, keyPem, error)) return false;
  ERR_clear_error();

  const std::string keyPath = writeNew(keyFile, keyPem, 0600, overwrite, error);
  if (keyPath.empty()) return false;
  const std::string certPath = writeNew(certFile, certPem, 0644, overwrite, error);
  if (certPath.empty()) {
    ::unlink(keyPath.c_str());
    return false;
  }
  if (overwrite) {
    // A reload between the two renames finds a key that does not match its certificate;
    // create() refuses that pair and the server keeps its old context.
    for (const auto& [from, to] : {std::pair{&keyPath, &keyFile}, std::pair{&certPath, &certFile}})
      if (::rename(from->c_str(), to->c_str()) != 0) {
        error = concatText({"cannot replace ", *to, ": ", errnoText()});
        ::unlink(keyPath.c_str());
        ::unlink(certPath.c_str());
        return false;
      }
  }
  return true;
}

}  // namespace lapps
