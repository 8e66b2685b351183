// Our TLS 1.3 record layer (native/src/security/tls-records.h): the key schedule against
// RFC 8448's vectors, and the takeover of real sessions: a server session from
// TlsServerContext and an OpenSSL client on a non-blocking socketpair finish the handshake
// and exchange data through OpenSSL, then the server side is ours and must interoperate
// (sequence numbers, KeyUpdate, padding, alerts) for each TLS 1.3 suite.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "security/tls-records.h"
#include "security/tls-server.h"
#include "test-pki.h"
#include "test.h"

using namespace lapps;
using namespace lapps::test;

namespace {

std::string hex(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

void unhex(const char* h, uint8_t* out) {
  for (size_t i = 0; h[2 * i]; ++i)
    out[i] = uint8_t(std::stoi(std::string(h + 2 * i, 2), nullptr, 16));
}

struct Server {
  TestPki pki;
  CertFiles files;
  bool ok = false;
  Server() {
    signal(SIGPIPE, SIG_IGN);
    if (!pki.ok()) return;
    files = pki.issue("records", {.cn = "records", .dns = {"records.test"}});
    ok = !files.cert.empty();
  }
};

Server& server() {
  static Server s;
  return s;
}

// A handshake done through OpenSSL on both ends, then one exchange each way (as the HTTP
// upgrade and its 101 go), leaving the server session ready to be taken over.
struct Pair {
  int sfd = -1, cfd = -1;
  SSL* s = nullptr;
  SSL* c = nullptr;
  SSL_CTX* cctx = nullptr;
  std::shared_ptr<TlsServerContext> sctx;

  ~Pair() {
    if (s) SSL_free(s);
    if (c) SSL_free(c);
    if (cctx) SSL_CTX_free(cctx);
    if (sfd >= 0) ::close(sfd);
    if (cfd >= 0) ::close(cfd);
  }

  bool start(const char* suite, int maxVersion = 0) {
    if (!server().ok) return false;
    TlsSettings ts;
    ts.certificates = {{server().files.cert, server().files.key, {}}};
    if (suite) ts.ciphersuites = suite;
    std::string err;
    sctx = TlsServerContext::create(ts, err);
    if (!sctx) return false;
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) return false;
    sfd = fds[0];
    cfd = fds[1];
    s = sctx->newSession(sfd);
    cctx = SSL_CTX_new(TLS_client_method());
    if (maxVersion) SSL_CTX_set_max_proto_version(cctx, maxVersion);
    c = SSL_new(cctx);
    SSL_set_fd(c, cfd);
    SSL_set_connect_state(c);
    bool sDone = false, cDone = false;
    for (int i = 0; i < 50 && !(sDone && cDone); ++i) {
      ERR_clear_error();
      if (!cDone) {
        int r = SSL_do_handshake(c);
        if (r == 1)
          cDone = true;
        else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
          return false;
      }
      if (!sDone) {
        int r = SSL_do_handshake(s);
        if (r == 1)
          sDone = true;
        else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
          return false;
      }
    }
    if (!(sDone && cDone)) return false;
    // The upgrade request and the 101, through OpenSSL.
    if (SSL_write(c, "GET", 3) != 3) return false;
    char buf[64];
    if (SSL_read(s, buf, sizeof buf) != 3) return false;
    if (SSL_write(s, "101", 3) != 3) return false;
    return clientRead() == "101";
  }

  // What the client can read now (its tickets are taken in passing).
  std::string clientRead() {
    std::string got;
    char buf[4096];
    for (;;) {
      ERR_clear_error();
      int n = SSL_read(c, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, size_t(n));
    }
    return got;
  }

  std::string rawRead() {
    std::string got;
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(sfd, buf, sizeof buf, 0)) > 0) got.append(buf, size_t(n));
    return got;
  }

  bool rawWrite(const uint8_t* p, size_t n) {
    return ::send(sfd, p, n, MSG_NOSIGNAL) == ssize_t(n);
  }
};

// The server's side after the switch: raw bytes in, plaintext out, partial records kept
// between calls as the transport keeps them.
struct Ours {
  TlsRecordCrypto crypto;
  std::unique_ptr<TlsRecordState> st;
  std::string held;
  TlsOpenResult last;

  std::string feed(const std::string& raw) {
    held += raw;
    std::string buf = held;
    last = crypto.open(*st, reinterpret_cast<uint8_t*>(buf.data()), buf.size());
    held.erase(0, last.consumed);
    return buf.substr(0, last.plain);
  }

  bool send(Pair& p, const std::string& data) {
    uint8_t out[kTlsMaxSealed];
    size_t off = 0;
    do {
      iovec iov{const_cast<char*>(data.data()), data.size()};
      size_t taken = 0;
      size_t n = crypto.seal(*st, 23, &iov, 1, off, out, taken);
      if (n == 0 || !p.rawWrite(out, n)) return false;
      off += taken;
    } while (off < data.size());
    return true;
  }
};

bool takeOver(Pair& p, Ours& o) {
  if (!tlsRecordsReady(p.s)) return false;
  o.st = takeTlsRecords(p.s);
  if (!o.st) return false;
  SSL_set_shutdown(p.s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(p.s);
  p.s = nullptr;
  return true;
}

}  // namespace

TEST("tls records: HKDF-Expand-Label gives RFC 8448's traffic keys") {
  // RFC 8448 §3: the server's handshake and application traffic secrets, keys and IVs.
  struct {
    const char *secret, *key, *iv;
  } v[] = {
      {"b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",
       "3fce516009c21727d0f2e4e86ee403bc", "5d313eb2671276ee13000b30"},
      {"a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
       "9f02283b6c9c07efc26bb9f2ac92e356", "cf782b88dd83549aadf1e984"},
  };
  for (const auto& t : v) {
    uint8_t secret[32];
    unhex(t.secret, secret);
    TlsTrafficKeys k{};
    REQUIRE(deriveTrafficKeys(TlsSuite::Aes128Gcm, k, secret, 32));
    CHECK_EQ(hex(k.key, 16), std::string(t.key));
    CHECK_EQ(hex(k.iv, 12), std::string(t.iv));
  }
  TlsTrafficKeys k{};
  uint8_t secret[32] = {};
  CHECK(!deriveTrafficKeys(TlsSuite::Aes256Gcm, k, secret, 32));  // SHA-384 wants 48 bytes
}

TEST("tls records: the nonce is the IV xor the big-endian sequence number") {
  uint8_t iv[12], nonce[12];
  unhex("cf782b88dd83549aadf1e984", iv);
  tlsRecordNonce(iv, 0, nonce);
  CHECK_EQ(hex(nonce, 12), std::string("cf782b88dd83549aadf1e984"));
  tlsRecordNonce(iv, 1, nonce);
  CHECK_EQ(hex(nonce, 12), std::string("cf782b88dd83549aadf1e985"));
  tlsRecordNonce(iv, 0x0102030405060708ull, nonce);
  CHECK_EQ(hex(nonce, 12), std::string("cf782b88dc81579ea8f7ee8c"));
}

TEST("tls records: seal and open round trip, tampering and limits") {
  TlsRecordCrypto crypto;
  for (TlsSuite suite : {TlsSuite::Aes128Gcm, TlsSuite::Aes256Gcm, TlsSuite::Chacha20Poly1305}) {
    const size_t h = suite == TlsSuite::Aes256Gcm ? 48 : 32;
    uint8_t secret[48];
    for (size_t i = 0; i < h; ++i) secret[i] = uint8_t(i * 7 + 1);
    TlsRecordState a, b;
    a.suite = b.suite = suite;
    REQUIRE(deriveTrafficKeys(suite, a.write, secret, h));
    REQUIRE(deriveTrafficKeys(suite, b.read, secret, h));
    a.write.seq = b.read.seq = 5;
    // Two records, gathered from three pieces, then opened from one buffer.
    std::string big(20000, 'x');
    iovec iov[3] = {
        {const_cast<char*>("hel"), 3}, {const_cast<char*>("lo "), 3}, {big.data(), big.size()}};
    std::string wire;
    size_t off = 0, taken = 0;
    uint8_t out[kTlsMaxSealed];
    while (off < 20006) {
      size_t n = crypto.seal(a, 23, iov, 3, off, out, taken);
      REQUIRE(n > 0);
      CHECK(taken <= kTlsMaxPlain);
      wire.append(reinterpret_cast<char*>(out), n);
      off += taken;
    }
    CHECK_EQ(a.write.seq, uint64_t(7));
    std::string copy = wire;
    TlsOpenResult r = crypto.open(b, reinterpret_cast<uint8_t*>(copy.data()), copy.size() - 1);
    CHECK(r.status == TlsOpenStatus::Ok);
    CHECK_EQ(r.plain, kTlsMaxPlain);  // the second record is one byte short: kept
    CHECK_EQ(copy.substr(0, 8), std::string("hello xx"));
    b.read.seq = 5;
    copy = wire;
    r = crypto.open(b, reinterpret_cast<uint8_t*>(copy.data()), copy.size());
    CHECK_EQ(r.consumed, wire.size());
    CHECK_EQ(copy.substr(0, r.plain), std::string("hello ") + big);
    // A flipped bit anywhere (header, body, tag) fails the record.
    for (size_t at : {size_t(3), size_t(10), wire.size() - 1}) {
      b.read.seq = 5;
      copy = wire;
      copy[at] ^= 1;
      r = crypto.open(b, reinterpret_cast<uint8_t*>(copy.data()), copy.size());
      CHECK(r.status == TlsOpenStatus::Fatal);
    }
    // The wrong sequence number is a bad tag too.
    b.read.seq = 6;
    copy = wire;
    r = crypto.open(b, reinterpret_cast<uint8_t*>(copy.data()), copy.size());
    CHECK(r.status == TlsOpenStatus::Fatal);
    CHECK_EQ(int(r.alert), int(kAlertBadRecordMac));
  }
  // Oversized, unprotected and too short records are refused from their header.
  TlsRecordState s;
  uint8_t secret[32] = {1};
  REQUIRE(deriveTrafficKeys(TlsSuite::Aes128Gcm, s.read, secret, 32));
  uint8_t over[5] = {23, 3, 3, uint8_t((kTlsMaxCiphertext + 1) >> 8),
                     uint8_t(kTlsMaxCiphertext + 1)};
  TlsOpenResult r = crypto.open(s, over, 5);
  CHECK_EQ(int(r.alert), int(kAlertRecordOverflow));
  uint8_t ccs[6] = {20, 3, 3, 0, 1, 1};
  r = crypto.open(s, ccs, 6);
  CHECK_EQ(int(r.alert), int(kAlertUnexpectedMessage));
  uint8_t shortRec[21] = {23, 3, 3, 0, 16};
  r = crypto.open(s, shortRec, 21);
  CHECK_EQ(int(r.alert), int(kAlertBadRecordMac));
  uint8_t header[4] = {23, 3, 3, 0};
  r = crypto.open(s, header, 4);
  CHECK(r.status == TlsOpenStatus::Ok);
  CHECK_EQ(r.consumed, size_t(0));
}

TEST("tls records: a real TLS 1.3 session continues on our record layer, every suite") {
  for (const char* suite :
       {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}) {
    Pair p;
    REQUIRE(p.start(suite));
    Ours o;
    REQUIRE(takeOver(p, o));
    // Client to us, several records at once, one padded.
    REQUIRE(SSL_write(p.c, "one ", 4) == 4);
    SSL_set_block_padding(p.c, 256);
    REQUIRE(SSL_write(p.c, "two ", 4) == 4);
    SSL_set_block_padding(p.c, 1);
    REQUIRE(SSL_write(p.c, "three", 5) == 5);
    CHECK_EQ(o.feed(p.rawRead()), std::string("one two three"));
    CHECK(o.last.status == TlsOpenStatus::Ok);
    // Us to the client.
    REQUIRE(o.send(p, "pong"));
    CHECK_EQ(p.clientRead(), std::string("pong"));
    // Large both ways, fed to us in odd pieces (partial records between reads).
    std::string big(100000, 'b');
    for (size_t i = 0; i < big.size(); ++i) big[i] = char('a' + i % 26);
    size_t sent = 0;
    while (sent < big.size()) {
      int n = SSL_write(p.c, big.data() + sent, int(big.size() - sent));
      REQUIRE(n > 0);
      sent += size_t(n);
    }
    std::string raw = p.rawRead(), got;
    for (size_t i = 0; i < raw.size(); i += 777) got += o.feed(raw.substr(i, 777));
    CHECK(got == big);
    CHECK(o.held.empty());
    REQUIRE(o.send(p, big));
    std::string back;
    for (int i = 0; i < 100 && back.size() < big.size(); ++i) back += p.clientRead();
    CHECK(back == big);
    // KeyUpdate from the client, asking for ours: the read key moves on, ours is owed.
    REQUIRE(SSL_key_update(p.c, SSL_KEY_UPDATE_REQUESTED) == 1);
    REQUIRE(SSL_write(p.c, "after", 5) == 5);
    CHECK_EQ(o.feed(p.rawRead()), std::string("after"));
    CHECK(o.st->keyUpdateOwed);
    uint8_t ku[kTlsMaxSealed];
    size_t kn = o.crypto.sealKeyUpdate(*o.st, ku);
    REQUIRE(kn > 0);
    CHECK(!o.st->keyUpdateOwed);
    REQUIRE(p.rawWrite(ku, kn));
    REQUIRE(o.send(p, "updated"));
    CHECK_EQ(p.clientRead(), std::string("updated"));
    // Without a request: only the read key moves.
    REQUIRE(SSL_key_update(p.c, SSL_KEY_UPDATE_NOT_REQUESTED) == 1);
    REQUIRE(SSL_write(p.c, "again", 5) == 5);
    CHECK_EQ(o.feed(p.rawRead()), std::string("again"));
    CHECK(!o.st->keyUpdateOwed);
    // close_notify from the client ends it, after what came before it.
    REQUIRE(SSL_write(p.c, "last", 4) == 4);
    SSL_shutdown(p.c);
    CHECK_EQ(o.feed(p.rawRead()), std::string("last"));
    CHECK(o.last.status == TlsOpenStatus::CloseNotify);
  }
}

TEST("tls records: our close_notify and a fatal alert reach the client") {
  Pair p;
  REQUIRE(p.start(nullptr));
  Ours o;
  REQUIRE(takeOver(p, o));
  const uint8_t alert[2] = {1, kAlertCloseNotify};
  uint8_t out[kTlsMaxSealed];
  size_t n = o.crypto.seal(*o.st, 21, alert, 2, out);
  REQUIRE(n > 0);
  REQUIRE(p.rawWrite(out, n));
  char buf[16];
  int r = SSL_read(p.c, buf, sizeof buf);
  CHECK(r <= 0);
  CHECK_EQ(SSL_get_error(p.c, r), SSL_ERROR_ZERO_RETURN);
}

TEST("tls records: a tampered record from a real client fails, TLS 1.2 stays on OpenSSL") {
  Pair p;
  REQUIRE(p.start(nullptr));
  Ours o;
  REQUIRE(takeOver(p, o));
  REQUIRE(SSL_write(p.c, "hello", 5) == 5);
  std::string raw = p.rawRead();
  raw[raw.size() / 2] ^= 0x40;
  o.feed(raw);
  CHECK(o.last.status == TlsOpenStatus::Fatal);
  CHECK_EQ(int(o.last.alert), int(kAlertBadRecordMac));

  Pair old;
  REQUIRE(old.start(nullptr, TLS1_2_VERSION));
  CHECK(!tlsRecordsReady(old.s));
  CHECK(takeTlsRecords(old.s) == nullptr);
}

TEST("tls records: a KeyUpdate handled by OpenSSL before the switch keeps the session there") {
  Pair p;
  REQUIRE(p.start(nullptr));
  REQUIRE(SSL_key_update(p.c, SSL_KEY_UPDATE_NOT_REQUESTED) == 1);
  REQUIRE(SSL_write(p.c, "x", 1) == 1);
  char buf[8];
  REQUIRE(SSL_read(p.s, buf, sizeof buf) == 1);
  CHECK(!tlsRecordsReady(p.s));
}

TEST("tls records: a half-read record inside OpenSSL delays the switch") {
  Pair p;
  REQUIRE(p.start(nullptr));
  REQUIRE(SSL_write(p.c, "hello", 5) == 5);
  // Hold back the record: pass only its header to the server session.
  char raw[256];
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
  // Re-route: read what the client sent from the server's socket and give OpenSSL the
  // header alone through a fresh pair, by swapping the session's fd.
  ssize_t n = ::recv(p.sfd, raw, sizeof raw, 0);
  REQUIRE(n > 5);
  REQUIRE(::send(fds[1], raw, 5, 0) == 5);
  SSL_set_fd(p.s, fds[0]);
  char buf[16];
  CHECK(SSL_read(p.s, buf, sizeof buf) <= 0);
  CHECK(!tlsRecordsReady(p.s));
  REQUIRE(::send(fds[1], raw + 5, size_t(n - 5), 0) == n - 5);
  CHECK_EQ(SSL_read(p.s, buf, sizeof buf), 5);
  CHECK(tlsRecordsReady(p.s));
  ::close(fds[0]);
  ::close(fds[1]);
}
