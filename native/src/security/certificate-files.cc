#include "security/certificate-files.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <system_error>

#include "base/text.h"

namespace lapps {

namespace {

constexpr size_t kMaxFileSize = 16 << 20;  // far above any PEM bundle

std::string errnoText(int e) {
  return std::generic_category().message(e);
}

bool readFile(const std::string& path, std::string& out, std::string& why) {
  why.clear();
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    why = errnoText(errno);
    return false;
  }
  out.clear();
  char buf[16384];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && out.size() < kMaxFileSize)
    out.append(buf, n);
  const int e = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (e != 0) why = errnoText(e);
  if (e == 0 && out.size() >= kMaxFileSize) why = "file too large";
  return why.empty();
}

BioPtr memoryBio(const std::string& data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// True if the last PEM read failed only because no further PEM block was found.
bool atPemEnd() {
  const unsigned long e = ERR_peek_last_error();
  return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

// Never prompt (a prompt would block the Node main thread): encrypted keys are refused.
int refusePassword(char*, int, int, void* asked) {
  *static_cast<bool*>(asked) = true;
  return -1;
}

bool loadChain(const std::string& path, ServerCertificate& c, std::string& error) {
  std::string pem, why;
  if (!readFile(path, pem, why)) {
    error = concatText({"cannot read certificate file ", path, ": ", why});
    return false;
  }
  BioPtr bio = memoryBio(pem);
  c.leaf.reset(PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr));
  if (!c.leaf) {
    error = atPemEnd() ? concatText({"certificate file ", path, " contains no PEM certificate"})
                       : concatText({"certificate file ", path, ": ", tlsErrorText()});
    ERR_clear_error();
    return false;
  }
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
    c.intermediates.emplace_back(x);
  if (!atPemEnd()) {
    error =
        concatText({"certificate file ", path, ": bad intermediate certificate: ", tlsErrorText()});
    return false;
  }
  ERR_clear_error();
  return true;
}

bool loadKey(const std::string& path, ServerCertificate& c, std::string& error) {
  std::string pem, why;
  if (!readFile(path, pem, why)) {
    error = concatText({"cannot read key file ", path, ": ", why});
    return false;
  }
  // OpenSSL 3's decoders report a file without any key block only as "unsupported".
  if (pem.find("PRIVATE KEY-----") == std::string::npos) {
    error = concatText({"key file ", path, " contains no PEM private key"});
    return false;
  }
  BioPtr bio = memoryBio(pem);
  bool asked = false;
  c.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, refusePassword, &asked));
  if (!c.key) {
    if (asked)
      error =
          concatText({"key file ", path, " is encrypted (only unencrypted keys are supported)"});
    else
      error = concatText({"key file ", path, ": ", tlsErrorText()});
    ERR_clear_error();
    return false;
  }
  return true;
}

// Lower case; a valid DNS name, or "*." and one. False for anything else (IP literals are
// fine: they are names made of digits).
bool normalizeName(std::string_view in, std::string& out) {
  if (in.size() > 253) return false;
  out.clear();
  for (char ch : in) out.push_back(ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch + 32) : ch);
  std::string_view rest = out;
  if (rest.substr(0, 2) == "*.") rest.remove_prefix(2);
  if (rest.empty() || rest.front() == '.' || rest.back() == '.') return false;
  char prev = '.';
  for (char ch : rest) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                    ch == '_' || (ch == '.' && prev != '.');
    if (!ok) return false;
    prev = ch;
  }
  return true;
}

std::string asn1Text(const ASN1_STRING* s) {
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return "";
  std::string text(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return text;
}

// The DNS names in subjectAltName, else the CN; names that cannot be matched are skipped.
std::vector<std::string> namesOf(X509* leaf) {
  std::vector<std::string> raw;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
    if (g->type == GEN_DNS) raw.push_back(asn1Text(g->d.dNSName));
  }
  GENERAL_NAMES_free(sans);
  if (raw.empty()) {
    const X509_NAME* subject = X509_get_subject_name(leaf);
    const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (at >= 0)
      raw.push_back(asn1Text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at))));
  }
  std::vector<std::string> names;
  std::string name;
  for (const std::string& r : raw)
    if (r.find('\0') == std::string::npos && normalizeName(r, name)) names.push_back(name);
  return names;
}

std::string notAfterText(const X509* leaf) {
  std::tm tm{};
  char buf[32];
  if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) != 1 ||
      std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    return "unknown";
  std::string text = buf;
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) text.append(" (expired)");
  return text;
}

}  // namespace

bool loadServerCertificate(const TlsCertificateSettings& s, bool isDefault, ServerCertificate& c,
                           std::string& error) {
  if (!loadChain(s.certFile, c, error) || !loadKey(s.keyFile, c, error)) return false;
  if (X509_check_private_key(c.leaf.get(), c.key.get()) != 1) {
    ERR_clear_error();
    error = concatText({"key file ", s.keyFile, " does not match certificate file ", s.certFile});
    return false;
  }
  if (s.serverNames.empty()) {
    c.names = namesOf(c.leaf.get());
  } else {
    std::string name;
    for (const std::string& n : s.serverNames) {
      if (!normalizeName(n, name)) {
        error = concatText({"invalid server name \"", n, "\" for certificate file ", s.certFile});
        return false;
      }
      c.names.push_back(name);
    }
  }
  if (c.names.empty() && !isDefault) {
    error = concatText({"certificate file ", s.certFile,
                        " names no host (no DNS subjectAltName or CN): set its serverNames"});
    return false;
  }
  return true;
}

std::string describeCertificate(const std::string& certFile, const ServerCertificate& c) {
  std::string line = certFile;
  line.append(": ");
  for (size_t i = 0; i < c.names.size(); ++i) {
    if (i > 0) line.append(", ");
    line.append(c.names[i]);
  }
  if (c.names.empty()) line.append("(no names)");
  line.append("; notAfter ").append(notAfterText(c.leaf.get()));
  return line;
}

CaBundle::~CaBundle() {
  sk_X509_NAME_pop_free(names, X509_NAME_free);
}

bool loadCaBundle(const std::string& path, CaBundle& ca, std::string& error) {
  std::string pem, why;
  if (!readFile(path, pem, why)) {
    error = concatText({"cannot read CA file ", path, ": ", why});
    return false;
  }
  if (!ca.store || !ca.names) {
    error = concatText({"CA file ", path, ": ", tlsErrorText("out of memory")});
    return false;
  }
  BioPtr bio = memoryBio(pem);
  int count = 0;
  while (X509Ptr x{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    X509_NAME* name = X509_NAME_dup(X509_get_subject_name(x.get()));
    if (X509_STORE_add_cert(ca.store.get(), x.get()) != 1 || !name ||
        sk_X509_NAME_push(ca.names, name) == 0) {
      X509_NAME_free(name);
      error = concatText({"CA file ", path, ": ", tlsErrorText()});
      return false;
    }
    ++count;
  }
  if (!atPemEnd()) {
    error = concatText({"CA file ", path, ": ", tlsErrorText()});
    return false;
  }
  ERR_clear_error();
  if (count == 0) {
    error = concatText({"CA file ", path, " contains no PEM certificate"});
    return false;
  }
  return true;
}

}  // namespace lapps
