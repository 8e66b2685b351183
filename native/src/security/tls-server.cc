#include "security/tls-server.h"

#include <openssl/err.h>

#include <algorithm>
#include <utility>

#include "base/text.h"
#include "security/certificate-files.h"
#include "security/openssl-ptr.h"
#include "security/tls-records.h"

namespace lapps {

namespace {

// Mozilla's "intermediate" TLS 1.2 list without the DHE suites: forward secrecy from ECDHE,
// AEAD only, for RSA and ECDSA (also Ed25519) certificates.
constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Same value on every context, so SSL_set_SSL_CTX carries it over (sessions stay resumable).
constexpr unsigned char kSessionIdContext[] = "lapps";

int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  const std::string_view want = TlsServerContext::kAlpn;
  // OpenSSL has checked the list's framing (length-prefixed, none empty).
  for (unsigned int i = 0; i < inlen; i += 1u + in[i]) {
    const std::string_view offered(reinterpret_cast<const char*>(in + i + 1), in[i]);
    if (offered == want) {
      *out = in + i + 1;
      *outlen = in[i];
      return SSL_TLSEXT_ERR_OK;
    }
  }
  // OpenSSL turns this into the no_application_protocol alert (RFC 7301 §3.2).
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// Every context gets the same protocol settings: after SSL_set_SSL_CTX a session keeps
// the options, versions, ciphers and verify mode it took from the default context, but
// certificates, ALPN callback, trust store and CA list come from the switched-to one.
bool configure(SSL_CTX* ctx, const TlsSettings& s, const CaBundle* ca, std::string& error) {
  SSL_CTX_set_min_proto_version(ctx, s.minVersion);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
                               SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
  // Idle connections then hold no read/write buffers; writes may be partial and retried
  // from a queue that moved.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  // One read() takes every record the socket holds, instead of two per record (its 5-byte
  // header, then its body): half the read syscalls of an echo. What is read ahead is
  // visible to SSL_has_pending, which the read loop drains (core/transport.h).
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
  const char* ciphers = s.ciphers.empty() ? kDefaultCiphers : s.ciphers.c_str();
  if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
    error = concatText({"tls ciphers \"", s.ciphers, "\": ", tlsErrorText()});
    return false;
  }
  if (!s.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, s.ciphersuites.c_str()) != 1) {
    error = concatText({"tls ciphersuites \"", s.ciphersuites, "\": ", tlsErrorText()});
    return false;
  }
  SSL_CTX_set_alpn_select_cb(ctx, selectAlpn, nullptr);
  // TLS 1.3 sessions learn their traffic secrets and count their records, so that our own
  // record layer can take over after the handshake (security/tls-records.h).
  watchTlsRecords(ctx);
  if (s.clientCert != ClientCertMode::None) {
    int mode = SSL_VERIFY_PEER;
    if (s.clientCert == ClientCertMode::Require) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
    SSL_CTX_set1_cert_store(ctx, ca->store.get());
    // Sent in the CertificateRequest, so clients pick a certificate these CAs issued.
    STACK_OF(X509_NAME)* names = SSL_dup_CA_list(ca->names);
    if (!names) {
      error = concatText({"CA file ", s.caFile, ": ", tlsErrorText("out of memory")});
      return false;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
  } else if (ca && !s.caFile.empty()) {
    // No client certificates: the bundle only completes the chain sent to clients, from
    // the store (OpenSSL's automatic chain building), as LAppS's tls_certificates.ca did.
    SSL_CTX_set1_cert_store(ctx, ca->store.get());
  }
  return true;
}

// The SNI table. It belongs to the default context (ex_data, freed with it) and holds
// references to the others, so a session in mid-handshake keeps all it needs alive even
// after its TlsServerContext is gone (reload).
struct SniTable {
  std::vector<SSL_CTX*> contexts;  // [0]: the default context itself, not a reference
  std::vector<std::pair<std::string, size_t>> exact;     // sorted by name
  std::vector<std::pair<std::string, size_t>> wildcard;  // "*.a.b" filed as "a.b", sorted

  ~SniTable() {
    for (size_t i = 1; i < contexts.size(); ++i) SSL_CTX_free(contexts[i]);
  }

  static const size_t* find(const std::vector<std::pair<std::string, size_t>>& v,
                            std::string_view name) {
    auto it = std::lower_bound(v.begin(), v.end(), name,
                               [](const auto& e, std::string_view n) { return e.first < n; });
    return it != v.end() && it->first == name ? &it->second : nullptr;
  }

  // Exact names win over wildcards; unknown names get the default.
  size_t select(std::string_view name) const {
    if (const size_t* i = find(exact, name)) return *i;
    const size_t dot = name.find('.');
    if (dot != std::string_view::npos && dot > 0)
      if (const size_t* i = find(wildcard, name.substr(dot + 1))) return *i;
    return 0;
  }
};

void freeSniTable(void*, void* table, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<SniTable*>(table);
}

int sniTableIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, freeSniTable);
  return index;
}

// Runs on a worker thread inside the handshake: no allocation, never aborts for an unknown
// name. `arg` is the default context's table (also when a second ClientHello after a
// HelloRetryRequest reaches it with the session already switched).
int selectCertificate(SSL* ssl, int* alert, void* arg) {
  const auto* table = static_cast<const SniTable*>(arg);
  const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (sni == nullptr) return SSL_TLSEXT_ERR_OK;
  char buf[254];
  size_t n = 0;
  for (; sni[n] != '\0' && n < sizeof buf; ++n)
    buf[n] = sni[n] >= 'A' && sni[n] <= 'Z' ? static_cast<char>(sni[n] + 32) : sni[n];
  if (n == sizeof buf) return SSL_TLSEXT_ERR_OK;  // longer than any DNS name
  if (n > 0 && buf[n - 1] == '.') --n;            // "example.com." is example.com
  SSL_CTX* ctx = table->contexts[table->select(std::string_view(buf, n))];
  if (SSL_get_SSL_CTX(ssl) != ctx && SSL_set_SSL_CTX(ssl, ctx) == nullptr) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

// Files each certificate's names into the table; the same name on two certificates is a
// configuration error (which one would win is not obvious).
bool fileNames(SniTable& table, const std::vector<ServerCertificate>& certs,
               const std::vector<TlsCertificateSettings>& settings, std::string& error) {
  std::vector<std::pair<std::string, size_t>> exact, wildcard;
  for (size_t i = 0; i < certs.size(); ++i)
    for (const std::string& name : certs[i].names) {
      if (name.compare(0, 2, "*.") == 0)
        wildcard.emplace_back(name.substr(2), i);
      else
        exact.emplace_back(name, i);
    }
  for (auto* v : {&exact, &wildcard}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
    for (size_t k = 1; k < v->size(); ++k) {
      const auto& [name, a] = (*v)[k - 1];
      if (name != (*v)[k].first) continue;
      error =
          concatText({"server name \"", v == &wildcard ? "*." : "", name, "\" is claimed by both ",
                      settings[a].certFile, " and ", settings[(*v)[k].second].certFile});
      return false;
    }
  }
  table.exact = std::move(exact);
  table.wildcard = std::move(wildcard);
  return true;
}

bool useCertificate(SSL_CTX* ctx, const TlsCertificateSettings& s, const ServerCertificate& c,
                    std::string& error) {
  bool ok = SSL_CTX_use_certificate(ctx, c.leaf.get()) == 1 &&
            SSL_CTX_use_PrivateKey(ctx, c.key.get()) == 1;
  for (size_t i = 0; ok && i < c.intermediates.size(); ++i)
    ok = SSL_CTX_add1_chain_cert(ctx, c.intermediates[i].get()) == 1;
  if (!ok) error = concatText({"certificate file ", s.certFile, ": ", tlsErrorText()});
  return ok;
}

}  // namespace

std::shared_ptr<TlsServerContext> TlsServerContext::create(const TlsSettings& settings,
                                                           std::string& error) {
  ERR_clear_error();
  if (settings.certificates.empty()) {
    error = "tls: no certificate configured";
    return nullptr;
  }
  if (settings.minVersion != TLS1_2_VERSION && settings.minVersion != TLS1_3_VERSION) {
    error = "tls minVersion: only TLS 1.2 and TLS 1.3 are supported";
    return nullptr;
  }
  if (settings.clientCert != ClientCertMode::None && settings.caFile.empty()) {
    error = "tls caFile: required to verify client certificates";
    return nullptr;
  }
  CaBundle ca;
  if (!settings.caFile.empty() && !loadCaBundle(settings.caFile, ca, error)) return nullptr;

  std::vector<ServerCertificate> certs(settings.certificates.size());
  for (size_t i = 0; i < certs.size(); ++i)
    if (!loadServerCertificate(settings.certificates[i], i == 0, certs[i], error)) return nullptr;

  auto table = std::make_unique<SniTable>();
  if (!fileNames(*table, certs, settings.certificates, error)) return nullptr;

  std::shared_ptr<TlsServerContext> result(new TlsServerContext());
  for (size_t i = 0; i < certs.size(); ++i) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
      error = concatText({"tls: ", tlsErrorText("cannot create a context")});
      return nullptr;
    }
    result->contexts_.push_back(ctx);
    if (!configure(ctx, settings, &ca, error) ||
        !useCertificate(ctx, settings.certificates[i], certs[i], error))
      return nullptr;
    result->descriptions_.push_back(
        describeCertificate(settings.certificates[i].certFile, certs[i]));
  }

  if (certs.size() > 1) {
    SSL_CTX* primary = result->contexts_[0];
    table->contexts.push_back(primary);
    for (size_t i = 1; i < result->contexts_.size(); ++i) {
      SSL_CTX_up_ref(result->contexts_[i]);
      table->contexts.push_back(result->contexts_[i]);
    }
    const int index = sniTableIndex();
    if (index < 0 || SSL_CTX_set_ex_data(primary, index, table.get()) != 1) {
      error = concatText({"tls: ", tlsErrorText("cannot attach the SNI table")});
      return nullptr;
    }
    SSL_CTX_set_tlsext_servername_callback(primary, selectCertificate);
    SSL_CTX_set_tlsext_servername_arg(primary, table.release());
  }
  ERR_clear_error();
  return result;
}

SSL* TlsServerContext::newSession(int fd) const {
  SSL* ssl = SSL_new(contexts_[0]);
  if (!ssl) return nullptr;
  if (SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

std::vector<std::string> TlsServerContext::describe() const {
  return descriptions_;
}

TlsServerContext::~TlsServerContext() {
  for (SSL_CTX* ctx : contexts_) SSL_CTX_free(ctx);
}

std::string tlsErrorText(std::string_view fallback) {
  // Oldest first is innermost first; the text reads outermost first ("PEM lib: no start line").
  std::vector<std::string> parts;
  const char* data = nullptr;
  int flags = 0;
  while (const unsigned long e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    std::string part;
    if (const char* reason = ERR_reason_error_string(e)) {
      part = reason;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      part = buf;
    }
    if ((flags & ERR_TXT_STRING) && data && *data) part.append(" (").append(data).append(")");
    if (std::find(parts.begin(), parts.end(), part) == parts.end()) parts.push_back(part);
  }
  if (parts.empty()) return std::string(fallback);
  std::string text;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (!text.empty()) text.append(": ");
    text.append(*it);
  }
  return text;
}

}  // namespace lapps
