// The TLS server contexts (native/src/security/tls-server.h) in real handshakes: a server
// session from newSession() on one end of a non-blocking socketpair, an OpenSSL client on
// the other, both pumped on this thread until they settle. Certificates come from TestPki.
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "security/dev-cert.h"
#include "security/tls-server.h"
#include "test-pki.h"
#include "test.h"

using namespace lapps;
using namespace lapps::test;

namespace {

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

// Every certificate the tests use, made once per run.
struct Certs {
  TestPki pki;
  CertFiles byDefault, exact, wild, alias, rsa, ed25519, dup, dupWild, client, rogueClient,
      expiredClient, noNames;
  bool ok = false;

  Certs() {
    signal(SIGPIPE, SIG_IGN);  // OpenSSL's socket BIO writes with write(2)
    if (!pki.ok()) return;
    byDefault = pki.issue("default", {.cn = "default", .dns = {"default.test"}});
    exact = pki.issue("exact",
                      {.cn = "exact", .dns = {"exact.wild.test"}, .issuer = Issuer::Intermediate});
    wild = pki.issue("wild", {.cn = "wild", .dns = {"*.wild.test"}});
    alias = pki.issue("alias", {.cn = "alias", .dns = {"san.alias.test"}});
    rsa = pki.issue("rsa", {.cn = "rsa", .dns = {"rsa.test"}, .key = KeyType::Rsa});
    ed25519 = pki.issue("ed25519", {.cn = "ed25519", .dns = {"ed.test"}, .key = KeyType::Ed25519});
    dup = pki.issue("dup", {.cn = "dup", .dns = {"other.test", "DEFAULT.test"}});
    dupWild = pki.issue("dup-wild", {.cn = "dup-wild", .dns = {"*.Wild.test"}});
    client = pki.issue("client", {.cn = "client", .client = true});
    rogueClient =
        pki.issue("rogue-client", {.cn = "rogue", .client = true, .issuer = Issuer::Rogue});
    expiredClient = pki.issue(
        "expired-client", {.cn = "expired", .client = true, .notBefore = -7200, .notAfter = -3600});
    noNames = pki.issue("no-names", {.cn = "not a host name"});
    for (const CertFiles* f : {&byDefault, &exact, &wild, &alias, &rsa, &ed25519, &dup, &dupWild,
                               &client, &rogueClient, &expiredClient, &noNames})
      if (f->cert.empty()) return;
    ok = true;
  }
};

Certs& certs() {
  static Certs c;
  return c;
}

TlsCertificateSettings cert(const CertFiles& f, std::vector<std::string> names = {}) {
  return {f.cert, f.key, std::move(names)};
}

std::shared_ptr<TlsServerContext> make(const TlsSettings& s) {
  std::string err;
  auto ctx = TlsServerContext::create(s, err);
  if (!ctx) FAIL("create: " + err);
  return ctx;
}

std::string createError(const TlsSettings& s) {
  std::string err;
  if (TlsServerContext::create(s, err)) return "(created)";
  return err;
}

struct ClientOptions {
  std::string sni{};         // empty: no SNI
  std::string verifyName{};  // with the root CA trusted: the name the certificate must match
  std::string verifyIp{};    // or the IP address
  std::string trustFile{};   // the CA file the client trusts; empty: the test root
  std::vector<std::string> alpn{};
  int minVersion = 0, maxVersion = 0;
  std::string ciphers{};       // TLS <= 1.2 list offered
  std::string groups{};        // key exchange groups, the first gets a key share
  std::string serverGroups{};  // set on the server session (to force a HelloRetryRequest)
  CertFiles cert{};            // client certificate
  SSL_SESSION* resume = nullptr;
};

enum class Step : uint8_t { Running, Done, Failed };

struct Outcome {
  Step client = Step::Running, server = Step::Running;
  bool exchanged = false;    // "ping" reached the server and "pong" came back
  std::string servedCn;      // the certificate the client received
  std::string clientCertCn;  // the certificate the server verified
  std::string alpn;
  std::string cipher;
  int version = 0;
  int clientAlert = -1;  // last alert the client received (description)
  bool resumed = false;
  int clientHellos = 0;  // 2 after a HelloRetryRequest
  std::string clientError, serverError;
  std::vector<std::string> caNames;  // CNs in the server's CertificateRequest
  SSL_SESSION* session = nullptr;    // the client's, for resumption (caller frees)

  bool ok() const { return client == Step::Done && server == Step::Done && exchanged; }
};

std::string cnOf(const X509_NAME* name) {
  char buf[256];
  if (X509_NAME_get_text_by_NID(name, NID_commonName, buf, sizeof buf) < 0) return "";
  return buf;
}

void onClientMessage(int write, int, int type, const void* buf, size_t len, SSL* ssl, void*) {
  if (write && type == SSL3_RT_HANDSHAKE && len > 0 &&
      static_cast<const unsigned char*>(buf)[0] == SSL3_MT_CLIENT_HELLO)
    ++static_cast<Outcome*>(SSL_get_app_data(ssl))->clientHellos;
}

void onClientInfo(const SSL* ssl, int where, int ret) {
  if (where & SSL_CB_READ_ALERT)
    static_cast<Outcome*>(SSL_get_app_data(ssl))->clientAlert = ret & 0xff;
}

// One non-blocking handshake step; the error queue is per thread and shared by both ends,
// so it is cleared before each call and drained after a failure.
void step(SSL* ssl, Step& state, std::string& error) {
  if (state != Step::Running) return;
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl);
  if (rc == 1) {
    state = Step::Done;
    return;
  }
  const int e = SSL_get_error(ssl, rc);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
  state = Step::Failed;
  error = tlsErrorText(std::string("SSL error ").append(std::to_string(e)));
}

// Reads what is there (non-blocking); false on a TLS error.
bool readSome(SSL* ssl, std::string& got, std::string& error) {
  char buf[256];
  ERR_clear_error();
  const int n = SSL_read(ssl, buf, sizeof buf);
  if (n > 0) {
    got.append(buf, static_cast<size_t>(n));
    return true;
  }
  const int e = SSL_get_error(ssl, n);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
  error = tlsErrorText(std::string("SSL error ").append(std::to_string(e)));
  return false;
}

Outcome connect(const TlsServerContext& server, const ClientOptions& o) {
  Outcome out;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    FAIL("socketpair");
    return out;
  }
  SSL* s = server.newSession(fds[0]);
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(cctx, o.minVersion);
  SSL_CTX_set_max_proto_version(cctx, o.maxVersion);
  bool ok = s && cctx;
  if (ok) {
    const std::string& trust = o.trustFile.empty() ? certs().pki.rootFile() : o.trustFile;
    ok = SSL_CTX_load_verify_locations(cctx, trust.c_str(), nullptr) == 1;
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, nullptr);
  }
  if (ok && !o.ciphers.empty()) ok = SSL_CTX_set_cipher_list(cctx, o.ciphers.c_str()) == 1;
  if (ok && !o.cert.cert.empty())
    ok = SSL_CTX_use_certificate_chain_file(cctx, o.cert.cert.c_str()) == 1 &&
         SSL_CTX_use_PrivateKey_file(cctx, o.cert.key.c_str(), SSL_FILETYPE_PEM) == 1;
  SSL* c = ok ? SSL_new(cctx) : nullptr;
  if (c) {
    SSL_set_fd(c, fds[1]);
    SSL_set_connect_state(c);
    SSL_set_app_data(c, &out);
    SSL_set_info_callback(c, onClientInfo);
    SSL_set_msg_callback(c, onClientMessage);
    if (!o.groups.empty()) SSL_set1_groups_list(c, o.groups.c_str());
    if (!o.serverGroups.empty()) SSL_set1_groups_list(s, o.serverGroups.c_str());
    if (!o.sni.empty()) SSL_set_tlsext_host_name(c, o.sni.c_str());
    if (!o.verifyName.empty()) SSL_set1_host(c, o.verifyName.c_str());
    if (!o.verifyIp.empty()) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c), o.verifyIp.c_str());
    if (o.resume) SSL_set_session(c, o.resume);
    std::string wire;
    for (const std::string& p : o.alpn) wire.append(1, static_cast<char>(p.size())).append(p);
    if (!wire.empty())
      SSL_set_alpn_protos(c, reinterpret_cast<const unsigned char*>(wire.data()),
                          static_cast<unsigned>(wire.size()));
  }
  if (!c) {
    FAIL("client setup: " + tlsErrorText());
  } else {
    // A few rounds settle any handshake; a side still Running after that waits for
    // bytes the other one will never send.
    for (int i = 0; i < 20 && (out.client == Step::Running || out.server == Step::Running); ++i) {
      step(c, out.client, out.clientError);
      step(s, out.server, out.serverError);
    }
    if (out.client == Step::Done) {
      ERR_clear_error();
      SSL_write(c, "ping", 4);
    }
    std::string atServer, atClient;
    bool serverAlive = out.server == Step::Done, clientAlive = out.client == Step::Done;
    for (int i = 0; i < 10 && clientAlive && atClient.size() < 4; ++i) {
      if (serverAlive && atServer.size() < 4) {
        serverAlive = readSome(s, atServer, out.serverError);
        if (atServer == "ping") SSL_write(s, "pong", 4);
      }
      clientAlive = readSome(c, atClient, out.clientError);
    }
    out.exchanged = atServer == "ping" && atClient == "pong";
    if (out.client == Step::Done) {
      if (const X509* peer = SSL_get0_peer_certificate(c))
        out.servedCn = cnOf(X509_get_subject_name(peer));
      const unsigned char* proto = nullptr;
      unsigned len = 0;
      SSL_get0_alpn_selected(c, &proto, &len);
      out.alpn.assign(reinterpret_cast<const char*>(proto), len);
      out.version = SSL_version(c);
      out.cipher = SSL_get_cipher_name(c);
      out.resumed = SSL_session_reused(c) == 1;
      if (const STACK_OF(X509_NAME)* names = SSL_get_client_CA_list(c))
        for (int i = 0; i < sk_X509_NAME_num(names); ++i)
          out.caNames.push_back(cnOf(sk_X509_NAME_value(names, i)));
      // A session whose connection ends without close_notify is not resumable.
      if (out.exchanged) {
        SSL_shutdown(c);
        SSL_shutdown(s);
      }
      out.session = SSL_get1_session(c);
    }
    if (out.server == Step::Done)
      if (const X509* peer = SSL_get0_peer_certificate(s))
        out.clientCertCn = cnOf(X509_get_subject_name(peer));
  }
  SSL_free(c);
  SSL_CTX_free(cctx);
  SSL_free(s);
  ::close(fds[0]);
  ::close(fds[1]);
  ERR_clear_error();
  return out;
}

Outcome connectOnce(const TlsServerContext& server, const ClientOptions& o) {
  Outcome out = connect(server, o);
  SSL_SESSION_free(out.session);
  out.session = nullptr;
  return out;
}

// Diagnostics for a failed expectation.
std::string explain(const Outcome& o) {
  return "client: " + o.clientError + " / server: " + o.serverError +
         " / alert: " + std::to_string(o.clientAlert);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Certificates and SNI.

TEST("tls-server: default certificate without SNI, over TLS 1.3 and 1.2") {
  Certs& c = certs();
  REQUIRE(c.ok);
  auto server = make({.certificates = {cert(c.byDefault)}});
  REQUIRE(server != nullptr);
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    const Outcome o = connectOnce(*server, {.verifyName = "default.test", .maxVersion = version});
    if (!o.ok()) FAIL(explain(o));
    CHECK_EQ(o.servedCn, "default");
    CHECK_EQ(o.version, version);
  }
}

TEST("tls-server: SNI picks exact over wildcard, ignores case; unknown names get the default") {
  Certs& c = certs();
  REQUIRE(c.ok);
  // The wildcard comes before the exact name: order must not matter.
  auto server = make({.certificates = {cert(c.byDefault), cert(c.wild), cert(c.exact)}});
  REQUIRE(server != nullptr);
  struct Row {
    const char* sni;
    const char* cn;
  };
  const Row rows[] = {
      {"exact.wild.test", "exact"},  // issued by the intermediate: the chain is sent
      {"EXACT.Wild.Test", "exact"},
      {"a.wild.test", "wild"},
      {"A.WILD.TEST", "wild"},
      {"exact.wild.test.", "exact"},
      {"b.a.wild.test", "default"},  // a wildcard stands for one
                                     // label
      {"wild.test", "default"},
      {"default.test", "default"},
      {"unknown.test", "default"},
  };
  for (const Row& r : rows) {
    const Outcome o = connectOnce(*server, {.sni = r.sni});
    if (!o.ok()) FAIL(std::string(r.sni) + ": " + explain(o));
    if (o.servedCn != r.cn) FAIL(std::string(r.sni) + " served " + o.servedCn);
  }
  // The client checks the name too, and trusts only the root.
  const Outcome o = connectOnce(*server, {.sni = "x.wild.test", .verifyName = "x.wild.test"});
  if (!o.ok()) FAIL(explain(o));
}

TEST("tls-server: SNI also holds after a HelloRetryRequest (second ClientHello)") {
  Certs& c = certs();
  REQUIRE(c.ok);
  auto server = make({.certificates = {cert(c.byDefault), cert(c.exact)}});
  REQUIRE(server != nullptr);
  // The key share goes with X25519, which the server does not take: it asks again for P-256.
  const Outcome o = connectOnce(
      *server, {.sni = "exact.wild.test", .groups = "X25519:P-256", .serverGroups = "P-256"});
  if (!o.ok()) FAIL(explain(o));
  CHECK_EQ(o.clientHellos, 2);
  CHECK_EQ(o.servedCn, "exact");
}

TEST("tls-server: serverNames replace the certificate's own names") {
  Certs& c = certs();
  REQUIRE(c.ok);
  auto server =
      make({.certificates = {cert(c.byDefault), cert(c.alias, {"Alias.Test", "*.alias.test"})}});
  REQUIRE(server != nullptr);
  CHECK_EQ(connectOnce(*server, {.sni = "alias.test"}).servedCn, "alias");
  CHECK_EQ(connectOnce(*server, {.sni = "x.alias.test"}).servedCn, "alias");
  CHECK_EQ(connectOnce(*server, {.sni = "san.alias.test"}).servedCn, "alias");  // via wildcard
  auto only = make({.certificates = {cert(c.byDefault), cert(c.alias, {"alias.test"})}});
  REQUIRE(only != nullptr);
  CHECK_EQ(connectOnce(*only, {.sni = "san.alias.test"}).servedCn, "default");
}

TEST("tls-server: a name claimed by two certificates is refused") {
  Certs& c = certs();
  REQUIRE(c.ok);
  std::string err = createError({.certificates = {cert(c.byDefault), cert(c.dup)}});
  CHECK(contains(err, "\"default.test\""));
  CHECK(contains(err, c.byDefault.cert));
  CHECK(contains(err, c.dup.cert));
  err = createError({.certificates = {cert(c.byDefault), cert(c.wild), cert(c.dupWild)}});
  CHECK(contains(err, "\"*.wild.test\""));
  err = createError({.certificates = {cert(c.byDefault), cert(c.alias, {"default.test"})}});
  CHECK(contains(err, "default.test"));
  // The same name twice on one certificate is just one name.
  CHECK(make({.certificates = {cert(c.byDefault, {"a.test", "A.test"})}}) != nullptr);
  err = createError({.certificates = {cert(c.byDefault), cert(c.alias, {"bad name"})}});
  CHECK(contains(err, "invalid server name \"bad name\""));
  err = createError({.certificates = {cert(c.byDefault), cert(c.alias, {"a.*.test"})}});
  CHECK(contains(err, "invalid server name"));
  err = createError({.certificates = {cert(c.byDefault), cert(c.noNames)}});
  CHECK(contains(err, c.noNames.cert));
  CHECK(contains(err, "serverNames"));
  // As the default it needs no name.
  CHECK(make({.certificates = {cert(c.noNames)}}) != nullptr);
}

TEST("tls-server: RSA, EC and Ed25519 keys over TLS 1.2 and 1.3 with the default ciphers") {
  Certs& c = certs();
  REQUIRE(c.ok);
  auto server = make({.certificates = {cert(c.byDefault), cert(c.rsa), cert(c.ed25519)}});
  REQUIRE(server != nullptr);
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION})
    for (const char* name : {"default.test", "rsa.test", "ed.test"}) {
      const Outcome o =
          connectOnce(*server, {.sni = name, .verifyName = name, .maxVersion = version});
      if (!o.ok()) FAIL(std::string(name) + ": " + explain(o));
      CHECK_EQ(o.version, version);
    }
}

TEST("tls-server: describe() lists each certificate's names and notAfter") {
  Certs& c = certs();
  REQUIRE(c.ok);
  auto server =
      make({.certificates = {cert(c.byDefault), cert(c.wild), cert(c.alias, {"A.test"})}});
  REQUIRE(server != nullptr);
  const std::vector<std::string> lines = server->describe();
  REQUIRE_EQ(lines.size(), size_t{3});
  CHECK(contains(lines[0], c.byDefault.cert + ": default.test; notAfter 20"));
  CHECK(contains(lines[1], ": *.wild.test; notAfter "));
  CHECK(contains(lines[2], ": a.test; notAfter "));
  CHECK(lines[0].back() == 'Z');
}

TEST("tls-server: a session keeps its contexts after the TlsServerContext is released") {
  Certs& c = certs();
  REQUIRE(c.ok);
  auto server = make({.certificates = {cert(c.byDefault), cert(c.exact)}});
  REQUIRE(server != nullptr);
  // Reload: the new context is created and the old one dropped while a session from it has
  // not even read its ClientHello yet.
  std::weak_ptr<TlsServerContext> weak = server;
  const Outcome before = connectOnce(*server, {.sni = "exact.wild.test"});
  CHECK_EQ(before.servedCn, "exact");

  int fds[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  SSL* s = server->newSession(fds[0]);
  REQUIRE(s != nullptr);
  server.reset();
  CHECK(weak.expired());
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL* cl = SSL_new(cctx);
  SSL_set_fd(cl, fds[1]);
  SSL_set_connect_state(cl);
  SSL_set_tlsext_host_name(cl, "exact.wild.test");
  Step cs = Step::Running, ss = Step::Running;
  std::string ce, se;
  for (int i = 0; i < 20 && (cs == Step::Running || ss == Step::Running); ++i) {
    step(cl, cs, ce);
    step(s, ss, se);
  }
  CHECK(cs == Step::Done);
  CHECK(ss == Step::Done);
  const X509* peer = SSL_get0_peer_certificate(cl);
  CHECK_EQ(peer ? cnOf(X509_get_subject_name(peer)) : "", "exact");
  SSL_free(cl);
  SSL_CTX_free(cctx);
  SSL_free(s);  // the last references: ASan/LSan see the contexts and the SNI table go
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST("tls-server: sessions resume with tickets (TLS 1.3 and 1.2), also on an SNI context") {
  Certs& c = certs();
  REQUIRE(c.ok);
  auto server = make({.certificates = {cert(c.byDefault), cert(c.exact)}});
  REQUIRE(server != nullptr);
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION})
    for (const char* sni : {"default.test", "exact.wild.test"}) {
      Outcome first = connect(*server, {.sni = sni, .maxVersion = version});
      REQUIRE(first.ok() && first.session != nullptr);
      const Outcome again =
          connectOnce(*server, {.sni = sni, .maxVersion = version, .resume = first.session});
      SSL_SESSION_free(first.session);
      if (!again.ok()) FAIL(explain(again));
      if (!again.resumed)
        FAIL(std::string(sni) + " not resumed, version " + std::to_string(version));
    }
}

// ---------------------------------------------------------------------------------------
// Versions, ciphers, ALPN.

TEST("tls-server: minVersion 1.3 refuses a TLS 1.2 client; 1.2 accepts 1.2 and 1.3") {
  Certs& c = certs();
  REQUIRE(c.ok);
  auto strict = make({.certificates = {cert(c.byDefault)}, .minVersion = TLS1_3_VERSION});
  REQUIRE(strict != nullptr);
  Outcome o = connectOnce(*strict, {.maxVersion = TLS1_2_VERSION});
  CHECK(o.client == Step::Failed);
  CHECK(o.server == Step::Failed);
  CHECK_EQ(o.clientAlert, SSL_AD_PROTOCOL_VERSION);
  CHECK_EQ(connectOnce(*strict, {}).version, TLS1_3_VERSION);

  auto lax = make({.certificates = {cert(c.byDefault)}});
  REQUIRE(lax != nullptr);
  o = connectOnce(*lax, {.maxVersion = TLS1_2_VERSION});
  CHECK(o.ok());
  CHECK_EQ(o.version, TLS1_2_VERSION);
  o = connectOnce(*lax, {.minVersion = TLS1_3_VERSION});
  CHECK(o.ok());
  CHECK_EQ(o.version, TLS1_3_VERSION);
  // Below TLS 1.2 is never allowed, even when asked.
  CHECK(contains(createError({.certificates = {cert(c.byDefault)}, .minVersion = TLS1_1_VERSION}),
                 "minVersion"));
}

TEST("tls-server: default TLS 1.2 ciphers are ECDHE with AEAD only; ciphers and suites apply") {
  Certs& c = certs();
  REQUIRE(c.ok);
  auto server = make({.certificates = {cert(c.byDefault), cert(c.rsa)}});
  REQUIRE(server != nullptr);
  struct Row {
    const char* sni;
    const char* offered;
    bool ok;
  };
  const Row rows[] = {
      {"default.test", "ECDHE-ECDSA-AES256-GCM-SHA384", true},
      {"default.test", "ECDHE-ECDSA-CHACHA20-POLY1305", true},
      {"default.test", "ECDHE-ECDSA-AES128-SHA256", false},  // CBC
      {"default.test", "ECDHE-ECDSA-AES128-SHA", false},
      {"rsa.test", "ECDHE-RSA-AES128-GCM-SHA256", true},
      {"rsa.test", "AES128-GCM-SHA256", false},  // RSA key exchange: no forward secrecy
      {"rsa.test", "ECDHE-RSA-AES256-SHA384", false},
  };
  for (const Row& r : rows) {
    const Outcome o =
        connectOnce(*server, {.sni = r.sni, .maxVersion = TLS1_2_VERSION, .ciphers = r.offered});
    if (o.ok() != r.ok) FAIL(std::string(r.offered) + ": " + explain(o));
    if (r.ok) CHECK_EQ(o.cipher, std::string(r.offered));
  }

  auto custom = make({.certificates = {cert(c.byDefault)},
                      .ciphers = "ECDHE-ECDSA-AES128-SHA",
                      .ciphersuites = "TLS_CHACHA20_POLY1305_SHA256"});
  REQUIRE(custom != nullptr);
  Outcome o =
      connectOnce(*custom, {.maxVersion = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-SHA"});
  CHECK(o.ok());
  o = connectOnce(*custom,
                  {.maxVersion = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"});
  CHECK(!o.ok());
  o = connectOnce(*custom, {});
  CHECK(o.ok());
  CHECK_EQ(o.cipher, "TLS_CHACHA20_POLY1305_SHA256");
}

TEST("tls-server: ALPN selects http/1.1; h2 alone fails with no_application_protocol") {
  Certs& c = certs();
  REQUIRE(c.ok);
  auto server = make({.certificates = {cert(c.byDefault), cert(c.exact)}});
  REQUIRE(server != nullptr);
  for (const char* sni : {"", "exact.wild.test"}) {  // the SNI contexts select the same way
    Outcome o = connectOnce(*server, {.sni = sni, .alpn = {"h2", "http/1.1"}});
    if (!o.ok()) FAIL(explain(o));
    CHECK_EQ(o.alpn, "http/1.1");
    o = connectOnce(*server, {.sni = sni, .alpn = {"http/1.1"}});
    CHECK_EQ(o.alpn, "http/1.1");
    o = connectOnce(*server, {.sni = sni});
    CHECK(o.ok());
    CHECK_EQ(o.alpn, "");
    for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
      o = connectOnce(*server, {.sni = sni, .alpn = {"h2"}, .maxVersion = version});
      CHECK(o.client == Step::Failed);
      CHECK(o.server == Step::Failed);
      CHECK_EQ(o.clientAlert, SSL_AD_NO_APPLICATION_PROTOCOL);
      CHECK(contains(o.serverError, "no application protocol"));
    }
  }
}

// ---------------------------------------------------------------------------------------
// Client certificates.

TEST("tls-server: Require accepts a CA-signed client certificate and nothing else") {
  Certs& c = certs();
  REQUIRE(c.ok);
  auto server = make({.certificates = {cert(c.byDefault), cert(c.exact)},
                      .caFile = c.pki.rootFile(),
                      .clientCert = ClientCertMode::Require});
  REQUIRE(server != nullptr);
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION})
    for (const char* sni : {"", "exact.wild.test"}) {
      const std::string row = std::string(sni) + " v" + std::to_string(version) + ": ";
      Outcome o = connectOnce(*server, {.sni = sni, .maxVersion = version, .cert = c.client});
      if (!o.ok()) FAIL(row + explain(o));
      CHECK_EQ(o.clientCertCn, "client");
      REQUIRE_EQ(o.caNames.size(), size_t{1});  // the CA list went to the client
      CHECK_EQ(o.caNames[0], "lapps test root");

      o = connectOnce(*server, {.sni = sni, .maxVersion = version});
      if (o.server != Step::Failed || o.exchanged) FAIL(row + "no certificate accepted");
      CHECK_EQ(o.clientAlert,
               version == TLS1_3_VERSION ? SSL_AD_CERTIFICATE_REQUIRED : SSL_AD_HANDSHAKE_FAILURE);
      o = connectOnce(*server, {.sni = sni, .maxVersion = version, .cert = c.rogueClient});
      if (o.server != Step::Failed || o.exchanged) FAIL(row + "untrusted certificate accepted");
      CHECK_EQ(o.clientAlert, SSL_AD_UNKNOWN_CA);
      o = connectOnce(*server, {.sni = sni, .maxVersion = version, .cert = c.expiredClient});
      if (o.server != Step::Failed || o.exchanged) FAIL(row + "expired certificate accepted");
      CHECK_EQ(o.clientAlert, SSL_AD_CERTIFICATE_EXPIRED);
      // A server certificate (serverAuth only) is no client certificate.
      o = connectOnce(*server, {.sni = sni, .maxVersion = version, .cert = c.byDefault});
      if (o.server != Step::Failed || o.exchanged) FAIL(row + "serverAuth certificate accepted");
    }
}

TEST("tls-server: Optional accepts no certificate or a CA-signed one, not an untrusted one") {
  Certs& c = certs();
  REQUIRE(c.ok);
  auto server = make({.certificates = {cert(c.byDefault), cert(c.exact)},
                      .caFile = c.pki.rootFile(),
                      .clientCert = ClientCertMode::Optional});
  REQUIRE(server != nullptr);
  for (const char* sni : {"", "exact.wild.test"}) {
    Outcome o = connectOnce(*server, {.sni = sni});
    if (!o.ok()) FAIL(explain(o));
    CHECK_EQ(o.clientCertCn, "");
    o = connectOnce(*server, {.sni = sni, .cert = c.client});
    CHECK(o.ok());
    CHECK_EQ(o.clientCertCn, "client");
    o = connectOnce(*server, {.sni = sni, .cert = c.rogueClient});
    CHECK(o.server == Step::Failed);
    CHECK(!o.exchanged);
    CHECK_EQ(o.clientAlert, SSL_AD_UNKNOWN_CA);
  }
}

TEST("tls-server: without client certificates none is asked for") {
  Certs& c = certs();
  REQUIRE(c.ok);
  auto server = make({.certificates = {cert(c.byDefault)}});
  REQUIRE(server != nullptr);
  const Outcome o = connectOnce(*server, {.cert = c.client});
  CHECK(o.ok());
  CHECK_EQ(o.clientCertCn, "");
  CHECK(o.caNames.empty());
}

// ---------------------------------------------------------------------------------------
// Configuration errors.

TEST("tls-server: create() errors name the file or setting and the reason") {
  Certs& c = certs();
  REQUIRE(c.ok);
  const std::string notPem = c.pki.writeText("not-pem.crt", "hello\n");
  const std::string badPem = c.pki.writeText(
      "bad-pem.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  const std::string encrypted = c.pki.writeEncryptedKey("encrypted.key", c.byDefault.key);
  REQUIRE(!notPem.empty() && !badPem.empty() && !encrypted.empty());
  const std::string missing = c.pki.dir() + "/missing.pem";
  const TlsCertificateSettings good = cert(c.byDefault);
  struct Row {
    TlsSettings settings;
    std::vector<std::string> fragments;
  };
  const Row rows[] = {
      {{}, {"no certificate"}},
      {{.certificates = {{missing, c.byDefault.key, {}}}},
       {"certificate file", missing, "No such file"}},
      {{.certificates = {{c.byDefault.cert, missing, {}}}}, {"key file", missing, "No such file"}},
      {{.certificates = {{c.pki.dir(), c.byDefault.key, {}}}}, {c.pki.dir(), "directory"}},
      {{.certificates = {{notPem, c.byDefault.key, {}}}}, {notPem, "no PEM certificate"}},
      {{.certificates = {{c.byDefault.key, c.byDefault.key, {}}}},
       {c.byDefault.key, "no PEM certificate"}},
      {{.certificates = {{badPem, c.byDefault.key, {}}}}, {badPem}},
      {{.certificates = {{c.byDefault.cert, notPem, {}}}}, {notPem, "no PEM private key"}},
      {{.certificates = {{c.byDefault.cert, c.byDefault.cert, {}}}},
       {c.byDefault.cert, "no PEM private key"}},
      {{.certificates = {{c.byDefault.cert, encrypted, {}}}}, {encrypted, "encrypted"}},
      {{.certificates = {{c.byDefault.cert, c.rsa.key, {}}}},
       {c.rsa.key, "does not match", c.byDefault.cert}},
      {{.certificates = {good, {c.wild.cert, c.exact.key, {}}}},
       {c.exact.key, "does not match", c.wild.cert}},
      {{.certificates = {good}, .ciphers = "NOT-A-CIPHER"}, {"ciphers", "NOT-A-CIPHER"}},
      {{.certificates = {good}, .ciphersuites = "TLS_NOT_A_SUITE"},
       {"ciphersuites", "TLS_NOT_A_SUITE"}},
      {{.certificates = {good}, .clientCert = ClientCertMode::Require}, {"caFile", "required"}},
      {{.certificates = {good}, .clientCert = ClientCertMode::Optional}, {"caFile"}},
      {{.certificates = {good}, .caFile = missing, .clientCert = ClientCertMode::Require},
       {"CA file", missing, "No such file"}},
      {{.certificates = {good}, .caFile = notPem, .clientCert = ClientCertMode::Require},
       {"CA file", notPem, "no PEM certificate"}},
      {{.certificates = {good}, .minVersion = 0}, {"minVersion"}},
  };
  for (const Row& r : rows) {
    const std::string err = createError(r.settings);
    for (const std::string& f : r.fragments)
      if (!contains(err, f)) FAIL("error \"" + err + "\" lacks \"" + f + "\"");
  }
  // Nothing is left on this thread's error queue.
  CHECK_EQ(ERR_peek_error(), 0ul);
  // The file's own chain works as the CA file too (several certificates).
  CHECK(make({.certificates = {good},
              .caFile = c.exact.cert,
              .clientCert = ClientCertMode::Require}) != nullptr);
}

TEST("tls-server: tlsErrorText drains the queue, outermost reason first") {
  ERR_clear_error();
  CHECK_EQ(tlsErrorText("nothing"), "nothing");
  ERR_raise(ERR_LIB_PEM, PEM_R_NO_START_LINE);
  ERR_raise_data(ERR_LIB_SSL, ERR_R_PEM_LIB, "file %s", "x.pem");
  CHECK_EQ(tlsErrorText(), "PEM lib (file x.pem): no start line");
  CHECK_EQ(ERR_peek_error(), 0ul);
}

// ---------------------------------------------------------------------------------------
// The development certificate.

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int modeOf(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
}

size_t filesIn(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

}  // namespace

TEST("tls-server: writeDevCertificate makes a localhost certificate a client can trust") {
  Certs& c = certs();
  REQUIRE(c.ok);
  const std::string dir = c.pki.dir() + "/dev";
  REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
  const std::string crt = dir + "/dev.crt", key = dir + "/dev.key";
  std::string err;
  REQUIRE(writeDevCertificate(crt, key, 30, false, err));
  CHECK_EQ(modeOf(key), 0600);
  CHECK_EQ(modeOf(crt), 0644);

  auto server = make({.certificates = {{crt, key}}});
  REQUIRE(server != nullptr);
  Outcome o =
      connectOnce(*server, {.sni = "localhost", .verifyName = "localhost", .trustFile = crt});
  if (!o.ok()) FAIL(explain(o));
  CHECK_EQ(o.servedCn, "localhost");
  for (const char* ip : {"127.0.0.1", "::1"}) {
    o = connectOnce(*server, {.verifyIp = ip, .trustFile = crt});
    if (!o.ok()) FAIL(std::string(ip) + ": " + explain(o));
  }
  o = connectOnce(*server, {.verifyName = "example.com", .trustFile = crt});
  CHECK(o.client == Step::Failed);  // the name is checked, not just the trust anchor
  REQUIRE_EQ(server->describe().size(), size_t{1});
  CHECK(contains(server->describe()[0], ": localhost; notAfter "));

  // What is inside.
  std::FILE* f = std::fopen(crt.c_str(), "r");
  REQUIRE(f != nullptr);
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  REQUIRE(x != nullptr);
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  CHECK_EQ(sk_GENERAL_NAME_num(names), 3);
  GENERAL_NAMES_free(names);
  CHECK_EQ(X509_check_host(x, "localhost", 0, 0, nullptr), 1);
  CHECK_EQ(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
  CHECK_EQ(X509_check_ip_asc(x, "::1", 0), 1);
  CHECK((X509_get_extended_key_usage(x) & XKU_SSL_SERVER) != 0);
  CHECK_EQ(X509_check_ca(x), 0);
  CHECK_EQ(X509_get_key_usage(x), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  CHECK_EQ(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
  CHECK_EQ(EVP_PKEY_get_bits(X509_get0_pubkey(x)), 256);
  int days = 0, secs = 0;
  CHECK(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)) == 1);
  CHECK_EQ(days, 30);
  CHECK_EQ(secs, 0);
  X509_free(x);
}

TEST("tls-server: writeDevCertificate refuses to overwrite unless told, and replaces whole files") {
  Certs& c = certs();
  REQUIRE(c.ok);
  const std::string dir = c.pki.dir() + "/dev-overwrite";
  REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
  const std::string crt = dir + "/dev.crt", key = dir + "/dev.key";
  std::string err;
  REQUIRE(writeDevCertificate(crt, key, 1, false, err));
  const std::string firstCrt = slurp(crt), firstKey = slurp(key);

  CHECK(!writeDevCertificate(crt, key, 1, false, err));
  CHECK(contains(err, crt));
  CHECK(contains(err, "exists"));
  std::filesystem::remove(crt);
  CHECK(!writeDevCertificate(crt, key, 1, false, err));  // the key alone is enough to refuse
  CHECK(contains(err, key));
  CHECK(!std::filesystem::exists(crt));
  CHECK_EQ(slurp(key), firstKey);

  ::chmod(key.c_str(), 0644);
  REQUIRE(writeDevCertificate(crt, key, 1, true, err));
  CHECK(slurp(crt) != firstCrt);
  CHECK(slurp(key) != firstKey);
  CHECK_EQ(modeOf(key), 0600);
  CHECK_EQ(filesIn(dir), size_t{2});  // no temporary file left
  CHECK(make({.certificates = {{crt, key}}}) != nullptr);

  CHECK(!writeDevCertificate(crt, key, 0, true, err));
  CHECK(contains(err, "days"));
  CHECK(!writeDevCertificate(crt, crt, 1, true, err));
  const std::string missing = dir + "/no/such/dir/x.crt";
  CHECK(!writeDevCertificate(missing, dir + "/x.key", 1, false, err));
  CHECK(contains(err, missing));
  CHECK(contains(err, "No such file"));
  CHECK_EQ(filesIn(dir), size_t{2});  // the key written first was removed again
  CHECK(!writeDevCertificate(missing, dir + "/x.key", 1, true, err));
  CHECK_EQ(filesIn(dir), size_t{2});
}
