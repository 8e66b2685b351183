// Outbound clients (native/src/client): URL parsing, the handshake checks and the
// server-frame parser as pure units; then WsClient and TcpClient against real sockets on
// 127.0.0.1, driven by a small epoll IoHost on the test thread. Each server is a blocking
// thread that speaks hand-made HTTP and frames (optionally over TLS with a certificate
// generated here), so every exchange is exact.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "client/client-handshake.h"
#include "client/resolver.h"
#include "client/tcp-client.h"
#include "client/tls-context.h"
#include "client/ws-client.h"
#include "client/ws-url.h"
#include "frames.h"
#include "protocol/handshake-response.h"
#include "protocol/unmask.h"
#include "test.h"

using namespace lapps;
using namespace lapps::test;

namespace {

std::string str(const Bytes& b) {
  return std::string(b.begin(), b.end());
}

const uint8_t* u8(std::string_view s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

// ---------------------------------------------------------------------------------------
// A minimal IoHost: level-triggered epoll, handlers looked up by fd at dispatch time (a
// handler may unwatch fds, its own or others', while a batch is being delivered).

class TestLoop : public IoHost {
 public:
  TestLoop() : ep_(epoll_create1(EPOLL_CLOEXEC)) {}
  ~TestLoop() override { ::close(ep_); }

  void watch(int fd, uint32_t events, IoHandler* handler) override {
    epoll_event e{};
    e.events = events;
    e.data.fd = fd;
    const bool known = handlers_.count(fd) != 0;
    if (epoll_ctl(ep_, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &e) != 0) ++errors;
    handlers_[fd] = handler;
  }

  void unwatch(int fd) override {
    if (handlers_.erase(fd) == 0 || epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr) != 0) ++errors;
  }

  // Delivers events until done() or the timeout; returns done().
  bool runUntil(const std::function<bool()>& done, int timeoutMs = 2000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      runOnce(5);
    }
    return true;
  }

  void runFor(int ms) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < end) runOnce(5);
  }

  size_t watched() const { return handlers_.size(); }
  int errors = 0;  // epoll_ctl failures and unwatch of unknown fds: client bugs

 private:
  void runOnce(int waitMs) {
    epoll_event evs[16];
    const int n = epoll_wait(ep_, evs, 16, waitMs);
    for (int i = 0; i < n; ++i) {
      auto it = handlers_.find(evs[i].data.fd);
      if (it != handlers_.end()) it->second->onIo(evs[i].data.fd, evs[i].events);
    }
  }

  int ep_;
  std::map<int, IoHandler*> handlers_;
};

// ---------------------------------------------------------------------------------------
// Blocking test servers.

// One accepted connection, plain or TLS, with a read buffer.
struct Peer {
  int fd = -1;
  SSL* ssl = nullptr;
  std::string in;

  ~Peer() {
    if (ssl) SSL_free(ssl);
    if (fd >= 0) ::close(fd);
  }

  bool fill() {
    char buf[65536];
    const long n = ssl ? SSL_read(ssl, buf, sizeof buf) : ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in.append(buf, static_cast<size_t>(n));
    return true;
  }

  bool readExact(size_t n, std::string& out) {
    while (in.size() < n)
      if (!fill()) return false;
    out = in.substr(0, n);
    in.erase(0, n);
    return true;
  }

  bool readHead(std::string& out) {
    size_t end;
    while ((end = in.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return false;
    out = in.substr(0, end + 4);
    in.erase(0, end + 4);
    return true;
  }

  bool write(std::string_view s) {
    while (!s.empty()) {
      const long n = ssl ? SSL_write(ssl, s.data(), static_cast<int>(s.size()))
                         : ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      s.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  bool write(const Bytes& b) { return write(str(b)); }

  // True if the client closed the connection (EOF) with nothing more to read.
  bool waitEof() { return in.empty() && !fill(); }
};

struct WireFrame {
  uint8_t opcode = 0;
  bool fin = false, masked = false;
  std::string payload;
};

// Reads one client frame, unmasking it.
bool readFrame(Peer& p, WireFrame& f) {
  std::string h;
  if (!p.readExact(2, h)) return false;
  f.fin = (h[0] & 0x80) != 0;
  f.opcode = h[0] & 0x0F;
  f.masked = (h[1] & 0x80) != 0;
  uint64_t len = h[1] & 0x7F;
  if (len >= 126) {
    std::string ext;
    if (!p.readExact(len == 126 ? 2 : 8, ext)) return false;
    len = 0;
    for (char c : ext) len = (len << 8) | static_cast<uint8_t>(c);
  }
  std::string mask;
  if (f.masked && !p.readExact(4, mask)) return false;
  if (!p.readExact(len, f.payload)) return false;
  if (f.masked) unmask(reinterpret_cast<uint8_t*>(f.payload.data()), f.payload.size(), u8(mask), 0);
  return true;
}

std::string headerValue(std::string_view head, std::string_view name) {
  const size_t at = head.find(std::string(name) + ": ");
  if (at == std::string_view::npos) return "";
  const size_t from = at + name.size() + 2;
  return std::string(head.substr(from, head.find("\r\n", from) - from));
}

// Reads the client's request and accepts it. Returns the request head ("" on failure).
std::string acceptWs(Peer& p, std::string_view protocol = {}) {
  std::string head;
  if (!p.readHead(head)) return "";
  std::string response;
  appendSwitchingProtocols(response, headerValue(head, "Sec-WebSocket-Key"), protocol);
  return p.write(response) ? head : "";
}

// Listens on 127.0.0.1 at construction; the thread accepts one connection (with a
// timeout), optionally completes a TLS handshake, and runs the script.
class TestServer {
 public:
  explicit TestServer(std::function<void(Peer&)> script, SSL_CTX* tls = nullptr,
                      bool ipv6 = false) {
    lfd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    sockaddr_in6 a6{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_loopback;
    sockaddr* sa = ipv6 ? reinterpret_cast<sockaddr*>(&a6) : reinterpret_cast<sockaddr*>(&a);
    socklen_t len = ipv6 ? sizeof a6 : sizeof a;
    listening =
        ::bind(lfd_, sa, len) == 0 && ::listen(lfd_, 4) == 0 && getsockname(lfd_, sa, &len) == 0;
    port_ = ntohs(ipv6 ? a6.sin6_port : a.sin_port);
    thread_ = std::thread([this, script = std::move(script), tls] {
      pollfd pfd{lfd_, POLLIN, 0};
      if (poll(&pfd, 1, 2000) != 1) return;
      Peer p;
      p.fd = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (p.fd < 0) return;
      timeval tv{2, 0};
      setsockopt(p.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      setsockopt(p.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      const int one = 1;
      setsockopt(p.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (tls) {
        p.ssl = SSL_new(tls);
        SSL_set_fd(p.ssl, p.fd);
        if (SSL_accept(p.ssl) != 1) {
          tlsFailed = true;
          return;
        }
      }
      script(p);
    });
  }

  ~TestServer() {
    join();
    ::close(lfd_);
  }

  void join() {
    if (thread_.joinable()) thread_.join();
  }
  uint16_t port() const { return port_; }
  std::string url(std::string_view path = "/") const {
    return "ws://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

  bool listening = false;
  bool tlsFailed = false;  // read after join()

 private:
  int lfd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

// A port on 127.0.0.1 with nothing listening.
uint16_t closedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// ---------------------------------------------------------------------------------------
// Listeners that record what they are told.

struct WsRecorder : WsClientListener {
  bool opened = false;
  int closedCount = 0;
  uint16_t code = 0;
  std::string reason, error;
  std::vector<std::pair<int, std::string>> messages;
  std::function<void()> onOpenHook;
  std::function<void(int, const std::string&)> onMessageHook;

  void onOpen() override {
    opened = true;
    if (onOpenHook) onOpenHook();
  }
  void onMessage(int opcode, const uint8_t* data, size_t len) override {
    messages.emplace_back(opcode, std::string(reinterpret_cast<const char*>(data), len));
    if (onMessageHook) onMessageHook(opcode, messages.back().second);
  }
  void onClosed(uint16_t c, std::string_view r, std::string_view e) override {
    ++closedCount;
    code = c;
    reason = r;
    error = e;
  }
  bool closed() const { return closedCount > 0; }
};

struct TcpRecorder : TcpClientListener {
  bool connected = false;
  int closedCount = 0;
  std::string data, error;
  std::function<void()> onConnectHook;

  void onConnect() override {
    connected = true;
    if (onConnectHook) onConnectHook();
  }
  void onData(const uint8_t* d, size_t n) override {
    data.append(reinterpret_cast<const char*>(d), n);
  }
  void onClosed(std::string_view e) override {
    ++closedCount;
    error = e;
  }
};

// Runs a WebSocket exchange against `server` until the client reports onClosed.
struct WsRun {
  TestLoop loop;
  WsRecorder rec;
  std::unique_ptr<WsClient> client;

  explicit WsRun(WsClientOptions opts = {})
      : client(std::make_unique<WsClient>(loop, rec, std::move(opts))) {}

  bool connect(const std::string& url) {
    std::string err;
    if (!client->connect(url, err)) {
      FAIL("connect: " + err);
      return false;
    }
    return true;
  }
  bool untilClosed() {
    return loop.runUntil([&] { return rec.closed(); });
  }
};

// ---------------------------------------------------------------------------------------
// TLS material, made once per run: an EC key and a self-signed certificate for
// "localhost" and 127.0.0.1, written to a PEM file that serves as the CA file.

struct TlsFixture {
  SSL_CTX* server = nullptr;
  std::string caFile;
  bool ok = false;

  TlsFixture() {
    signal(SIGPIPE, SIG_IGN);  // the test servers' OpenSSL socket BIO writes with write(2)
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    if (!key || !cert) return;
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, u8("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_set_pubkey(cert, key);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
    const char* exts[][2] = {{"basicConstraints", "critical,CA:TRUE"},
                             {"subjectAltName", "DNS:localhost,IP:127.0.0.1"}};
    for (auto& e : exts) {
      X509_EXTENSION* x = X509V3_EXT_nconf(nullptr, &v3, e[0], e[1]);
      if (!x) return;
      X509_add_ext(cert, x, -1);
      X509_EXTENSION_free(x);
    }
    if (X509_sign(cert, key, EVP_sha256()) == 0) return;

    char path[] = "/tmp/lapps-client-test-ca-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) return;
    FILE* f = fdopen(fd, "w");
    PEM_write_X509(f, cert);
    fclose(f);
    caFile = path;

    server = SSL_CTX_new(TLS_server_method());
    ok = SSL_CTX_use_certificate(server, cert) == 1 && SSL_CTX_use_PrivateKey(server, key) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
  }

  ~TlsFixture() {
    SSL_CTX_free(server);
    if (!caFile.empty()) ::unlink(caFile.c_str());
  }
};

TlsFixture& tlsFixture() {
  static TlsFixture f;
  return f;
}

SslCtxPtr clientContext(bool withCa) {
  TlsContextOptions o;
  if (withCa) o.caFile = tlsFixture().caFile;
  std::string err;
  SslCtxPtr ctx = makeClientTlsContext(o, err);
  if (!ctx) FAIL("makeClientTlsContext: " + err);
  return ctx;
}

// The echo script: accept, echo every data frame, answer the client's close and close.
void echoScript(Peer& p) {
  if (acceptWs(p).empty()) return;
  WireFrame f;
  while (readFrame(p, f)) {
    if (f.opcode == 8) {
      p.write(serverFrame(8, f.payload));
      return;
    }
    if (f.opcode == 1 || f.opcode == 2) p.write(serverFrame(f.opcode, f.payload));
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Pure units.

TEST("client: parseWsUrl splits ws and wss URLs") {
  struct Row {
    const char* url;
    bool secure;
    const char* host;
    uint16_t port;
    const char* path;
    const char* hostHeader;
  };
  const Row rows[] = {
      {"ws://example.com", false, "example.com", 80, "/", "example.com"},
      {"WSS://Example.COM/chat", true, "example.com", 443, "/chat", "example.com"},
      {"ws://h:8080/a/b?x=1&y=2", false, "h", 8080, "/a/b?x=1&y=2", "h:8080"},
      {"ws://h?q", false, "h", 80, "/?q", "h"},
      {"wss://h:443/", true, "h", 443, "/", "h"},
      {"ws://h:443/", false, "h", 443, "/", "h:443"},
      {"ws://[::1]:9000/p", false, "::1", 9000, "/p", "[::1]:9000"},
      {"wss://[2001:db8::1]", true, "2001:db8::1", 443, "/", "[2001:db8::1]"},
      {"ws://127.0.0.1:1/", false, "127.0.0.1", 1, "/", "127.0.0.1:1"},
      {"ws://h:/", false, "h", 80, "/", "h"},
  };
  for (const Row& r : rows) {
    WsUrl u;
    std::string err;
    if (!parseWsUrl(r.url, u, err)) {
      FAIL(std::string(r.url) + ": " + err);
      continue;
    }
    CHECK_EQ(u.secure, r.secure);
    CHECK_EQ(u.host, std::string(r.host));
    CHECK_EQ(u.port, r.port);
    CHECK_EQ(u.path, std::string(r.path));
    CHECK_EQ(u.hostHeader, std::string(r.hostHeader));
  }
}

TEST("client: parseWsUrl rejects other schemes and malformed URLs") {
  struct Row {
    const char* url;
    const char* error;  // a fragment of the message
  };
  const Row rows[] = {
      {"http://h/", "scheme"},        {"h/path", "absolute"},   {"ws:/h", "absolute"},
      {"ws://", "no host"},           {"ws://:80/", "no host"}, {"ws://h:0/", "range"},
      {"ws://h:65536/", "range"},     {"ws://h:12a/", "port"},  {"ws://h/#frag", "fragment"},
      {"ws://u:p@h/", "credentials"}, {"ws://[::1/", "IPv6"},   {"ws://[zz]/", "IPv6"},
      {"ws://[::1]x/", "IPv6"},       {"ws://h/a b", "path"},   {"ws://h\x01/", "host"},
      {"ws://h/\x7f", "path"},
  };
  for (const Row& r : rows) {
    WsUrl u;
    std::string err;
    if (parseWsUrl(r.url, u, err)) {
      FAIL(std::string("accepted ") + show(std::string_view(r.url)));
    } else if (!contains(err, r.error)) {
      FAIL(std::string(r.url) + ": unexpected error: " + err);
    }
  }
}

TEST("client: handshake request carries key, version, subprotocols and extra headers") {
  WsUrl u;
  std::string err;
  REQUIRE(parseWsUrl("ws://h:81/x?y", u, err));
  const std::string key = makeWsKey();
  CHECK_EQ(key.size(), size_t{24});
  CHECK(key != makeWsKey());
  std::string req;
  appendClientHandshake(req, u, key, {"a", "b"}, {{"Origin", "http://o"}});
  CHECK_EQ(req,
           "GET /x?y HTTP/1.1\r\nHost: h:81\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
               key + "\r\nSec-WebSocket-Protocol: a, b\r\nOrigin: http://o\r\n\r\n");
  CHECK(checkHandshakeOptions({"chat", "v2.json"}, {{"X-Token", "abc def"}}, err));
  CHECK(!checkHandshakeOptions({"a b"}, {}, err));
  CHECK(!checkHandshakeOptions({"a", "a"}, {}, err));
  CHECK(!checkHandshakeOptions({}, {{"Bad Name", "v"}}, err));
  CHECK(!checkHandshakeOptions({}, {{"X", "a\r\nInjected: 1"}}, err));
  CHECK(!checkHandshakeOptions({}, {{"sec-websocket-key", "v"}}, err));
  CHECK(!checkHandshakeOptions({}, {{"Host", "v"}}, err));
}

TEST("client: server handshake response checks") {
  const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
  const std::string accept = acceptKey(key);
  const std::string good =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
      "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: " +
      accept + "\r\n";
  std::string protocol, err;
  CHECK(checkServerHandshake(good + "\r\n", key, {}, protocol, err));
  CHECK_EQ(protocol, "");
  CHECK(checkServerHandshake(good + "Sec-WebSocket-Protocol: b\r\n\r\n", key, {"a", "b"}, protocol,
                             err));
  CHECK_EQ(protocol, "b");
  CHECK_EQ(findHeadEnd(good + "\r\nxx", 0), good.size() + 2);
  CHECK_EQ(findHeadEnd(good, 0), size_t{0});

  struct Row {
    std::string response;
    std::vector<std::string> offered;
    const char* error;
  };
  const Row rows[] = {
      {"HTTP/1.1 404 Not Found\r\n\r\n", {}, "HTTP 404 Not Found"},
      {"HTTP/1.1 200 OK\r\n\r\n", {}, "200"},
      {"FTP 101\r\n\r\n", {}, "status line"},
      {"HTTP/1.1 101 X\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n",
       {},
       "Upgrade"},
      {"HTTP/1.1 101 X\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n",
       {},
       "Connection"},
      {"HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", {}, "lacks Sec-"},
      {"HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
       "AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
       {},
       "wrong Sec-WebSocket-Accept"},
      {good + "Sec-WebSocket-Protocol: c\r\n\r\n", {"a", "b"}, "not offered"},
      {good + "Sec-WebSocket-Protocol: a\r\n\r\n", {}, "not offered"},
      {good + "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: a\r\n\r\n", {"a"}, "more than"},
      {good + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n", {}, "extension"},
      {good + " folded\r\n\r\n", {}, "malformed header"},
  };
  for (const Row& r : rows) {
    if (checkServerHandshake(r.response, key, r.offered, protocol, err)) {
      FAIL("accepted " + show(r.response));
    } else if (!contains(err, r.error)) {
      FAIL("unexpected error " + show(err) + " for " + show(r.response));
    }
  }
}

TEST("client: resolution without lookup, and on the helper thread") {
  std::vector<SocketAddress> out;
  CHECK(resolveWithoutLookup("127.0.0.1", 80, out));
  REQUIRE_EQ(out.size(), size_t{1});
  CHECK_EQ(formatAddress(out[0]), "127.0.0.1:80");
  CHECK(resolveWithoutLookup("::1", 443, out));
  REQUIRE_EQ(out.size(), size_t{1});
  CHECK_EQ(formatAddress(out[0]), "[::1]:443");
  CHECK(resolveWithoutLookup("LocalHost", 8, out));
  REQUIRE_EQ(out.size(), size_t{2});
  CHECK_EQ(formatAddress(out[0]), "127.0.0.1:8");
  CHECK_EQ(formatAddress(out[1]), "[::1]:8");
  CHECK(!resolveWithoutLookup("example.com", 80, out));
  CHECK(!resolveWithoutLookup("127.1", 80, out));  // inet_aton shorthand: getaddrinfo's job

  // "127.1" is numeric to getaddrinfo: the thread path without touching DNS.
  std::string err;
  std::unique_ptr<AsyncResolve> r = AsyncResolve::start("127.1", 9, err);
  REQUIRE(r != nullptr);
  pollfd pfd{r->fd(), POLLIN, 0};
  REQUIRE_EQ(poll(&pfd, 1, 2000), 1);
  CHECK(r->done());
  CHECK(r->result(out, err));
  REQUIRE_EQ(out.size(), size_t{1});
  CHECK_EQ(formatAddress(out[0]), "127.0.0.1:9");

  // Dropped while (probably) still running: the thread must finish harmlessly.
  for (int i = 0; i < 8; ++i) r = AsyncResolve::start("127.1", 9, err);
  r.reset();
}

// ---------------------------------------------------------------------------------------
// WsClient over real sockets.

TEST("ws client: handshake, text and binary echo, client-initiated close") {
  std::string request;
  TestServer server([&](Peer& p) {
    const std::string head = acceptWs(p);
    request = head;
    WireFrame f;
    while (readFrame(p, f)) {
      if (!f.masked) return;  // the client must mask
      if (f.opcode == 8) {
        p.write(serverFrame(8, f.payload));
        return;
      }
      p.write(serverFrame(f.opcode, f.payload));
    }
  });
  WsRun run;
  REQUIRE(run.connect(server.url("/chat?room=1")));
  CHECK(run.client->state() == WsClient::State::Connecting);
  const char* why = nullptr;
  CHECK(!run.client->send(1, u8("x"), 1, &why));
  CHECK_EQ(std::string(why ? why : ""), "not open yet");
  REQUIRE(run.loop.runUntil([&] { return run.rec.opened || run.rec.closed(); }));
  REQUIRE(run.rec.opened);
  CHECK(run.client->state() == WsClient::State::Open);
  CHECK(run.client->send(1, u8("hello"), 5));
  const std::string bin("\x00\x01\xff\x80", 4);
  CHECK(run.client->send(2, u8(bin), bin.size()));
  CHECK(run.client->send(1, nullptr, 0));
  CHECK(!run.client->send(1, u8("\xff"), 1, &why));
  CHECK(!run.client->send(9, u8("x"), 1, &why));
  REQUIRE(run.loop.runUntil([&] { return run.rec.messages.size() == 3; }));
  CHECK_EQ(run.rec.messages[0].first, 1);
  CHECK_EQ(run.rec.messages[0].second, "hello");
  CHECK_EQ(run.rec.messages[1].first, 2);
  CHECK_EQ(run.rec.messages[1].second, bin);
  CHECK_EQ(run.rec.messages[2].second, "");
  CHECK(!run.client->close(1005 + 1000));  // invalid code: refused, nothing sent
  CHECK(run.client->close(kNormal, "bye"));
  CHECK(run.client->state() == WsClient::State::Closing);
  CHECK(!run.client->send(1, u8("late"), 4, &why));
  CHECK_EQ(std::string(why ? why : ""), "closing");
  REQUIRE(run.untilClosed());
  CHECK_EQ(run.rec.closedCount, 1);
  CHECK_EQ(run.rec.code, kNormal);
  CHECK_EQ(run.rec.reason, "bye");
  CHECK_EQ(run.rec.error, "");
  CHECK(run.client->state() == WsClient::State::Closed);
  CHECK_EQ(run.loop.watched(), size_t{0});
  CHECK_EQ(run.loop.errors, 0);
  server.join();
  CHECK(contains(request, "GET /chat?room=1 HTTP/1.1\r\n"));
  CHECK(contains(request, "\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"));
}

TEST("ws client: subprotocol and extra headers") {
  std::string request;
  TestServer server([&](Peer& p) {
    request = acceptWs(p, "chat.v1");
    p.write(serverFrame(8, closePayload(kNormal)));
    WireFrame f;
    readFrame(p, f);
  });
  WsClientOptions opts;
  opts.protocols = {"chat.v2", "chat.v1"};
  opts.headers = {{"Origin", "https://app.example"}, {"Authorization", "Bearer t"}};
  WsRun run(opts);
  REQUIRE(run.connect(server.url()));
  REQUIRE(run.untilClosed());
  CHECK(run.rec.opened);
  CHECK_EQ(run.client->protocol(), "chat.v1");
  CHECK_EQ(run.rec.code, kNormal);
  CHECK_EQ(run.rec.error, "");
  server.join();
  CHECK(contains(request, "\r\nSec-WebSocket-Protocol: chat.v2, chat.v1\r\n"));
  CHECK(contains(request, "\r\nOrigin: https://app.example\r\n"));
  CHECK(contains(request, "\r\nAuthorization: Bearer t\r\n"));
}

TEST("ws client: wrong Sec-WebSocket-Accept is refused") {
  TestServer server([](Peer& p) {
    std::string head;
    if (!p.readHead(head)) return;
    p.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        acceptKey("not the key") + "\r\n\r\n");
    p.waitEof();
  });
  WsRun run;
  REQUIRE(run.connect(server.url()));
  REQUIRE(run.untilClosed());
  CHECK(!run.rec.opened);
  CHECK_EQ(run.rec.code, kAbnormal);
  CHECK(contains(run.rec.error, "Sec-WebSocket-Accept"));
}

TEST("ws client: a status other than 101 is refused") {
  TestServer server([](Peer& p) {
    std::string head;
    if (!p.readHead(head)) return;
    p.write("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    p.waitEof();
  });
  WsRun run;
  REQUIRE(run.connect(server.url()));
  REQUIRE(run.untilClosed());
  CHECK(!run.rec.opened);
  CHECK_EQ(run.rec.code, kAbnormal);
  CHECK(contains(run.rec.error, "403 Forbidden"));
}

TEST("ws client: frames right behind the 101, fragments reassembled, ping answered") {
  std::string pong;
  uint16_t echoed = 0;
  TestServer server([&](Peer& p) {
    std::string head;
    if (!p.readHead(head)) return;
    std::string response;
    appendSwitchingProtocols(response, headerValue(head, "Sec-WebSocket-Key"), {});
    // The 101 and the first frames in one write: the client must not lose them.
    p.write(response + str(serverFrame(1, "first")));
    p.write(serverFrame(1, "Hel", false));
    p.write(serverFrame(9, "p1"));
    // One frame dribbled byte by byte: its header and payload split across reads.
    for (uint8_t b : serverFrame(0, "lo w", false)) {
      p.write(std::string(1, static_cast<char>(b)));
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    p.write(serverFrame(0, "\xc3\xb6rld"));
    p.write(serverFrame(2, std::string(200000, 'z')));
    WireFrame f;
    if (readFrame(p, f) && f.opcode == 10) pong = f.payload;
    p.write(serverFrame(8, closePayload(kNormal, "done")));
    if (readFrame(p, f) && f.opcode == 8 && f.payload.size() >= 2)
      echoed = static_cast<uint16_t>((uint8_t(f.payload[0]) << 8) | uint8_t(f.payload[1]));
  });
  WsRun run;
  REQUIRE(run.connect(server.url()));
  REQUIRE(run.untilClosed());
  REQUIRE_EQ(run.rec.messages.size(), size_t{3});
  CHECK_EQ(run.rec.messages[0].second, "first");
  CHECK_EQ(run.rec.messages[1].first, 1);
  CHECK_EQ(run.rec.messages[1].second, "Hello w\xc3\xb6rld");
  CHECK_EQ(run.rec.messages[2].first, 2);
  CHECK_EQ(run.rec.messages[2].second.size(), size_t{200000});
  CHECK_EQ(run.rec.code, kNormal);
  CHECK_EQ(run.rec.reason, "done");
  CHECK_EQ(run.rec.error, "");
  server.join();
  CHECK_EQ(pong, "p1");
  CHECK_EQ(echoed, kNormal);
}

TEST("ws client: server-initiated close handshake") {
  uint16_t echoed = 0;
  bool eof = false;
  TestServer server([&](Peer& p) {
    if (acceptWs(p).empty()) return;
    p.write(serverFrame(8, closePayload(kGoingAway, "going away")));
    WireFrame f;
    if (readFrame(p, f) && f.opcode == 8 && f.payload.size() == 2)
      echoed = static_cast<uint16_t>((uint8_t(f.payload[0]) << 8) | uint8_t(f.payload[1]));
    // The server closes TCP first; the client must not have closed before this.
    ::shutdown(p.fd, SHUT_WR);
    eof = p.waitEof();
  });
  WsRun run;
  REQUIRE(run.connect(server.url()));
  REQUIRE(run.untilClosed());
  CHECK(run.rec.opened);
  CHECK_EQ(run.rec.closedCount, 1);
  CHECK_EQ(run.rec.code, kGoingAway);
  CHECK_EQ(run.rec.reason, "going away");
  CHECK_EQ(run.rec.error, "");
  server.join();
  CHECK_EQ(echoed, kGoingAway);
  CHECK(eof);
}

namespace {

// The client's close frame (code) after a protocol violation, 0 if none arrived.
uint16_t readCloseCode(Peer& p) {
  WireFrame f;
  while (readFrame(p, f)) {
    if (f.opcode == 8 && f.payload.size() >= 2)
      return static_cast<uint16_t>((uint8_t(f.payload[0]) << 8) | uint8_t(f.payload[1]));
  }
  return 0;
}

}  // namespace

TEST("ws client: masked server frame fails the connection with 1002") {
  uint16_t sent = 0;
  TestServer server([&](Peer& p) {
    if (acceptWs(p).empty()) return;
    p.write(frame(1, "masked"));  // frames.h masks by default
    sent = readCloseCode(p);
  });
  WsRun run;
  REQUIRE(run.connect(server.url()));
  REQUIRE(run.untilClosed());
  CHECK(run.rec.messages.empty());
  CHECK_EQ(run.rec.code, kProtocolError);
  CHECK(contains(run.rec.error, "masked"));
  server.join();
  CHECK_EQ(sent, kProtocolError);
}

TEST("ws client: message over maxMessageSize fails the connection with 1009") {
  uint16_t sent = 0;
  TestServer server([&](Peer& p) {
    if (acceptWs(p).empty()) return;
    p.write(serverFrame(2, std::string(1000, 'x')));  // at the limit: delivered
    p.write(serverFrame(1, std::string(600, 'x'), false));
    p.write(serverFrame(0, std::string(600, 'x')));
    sent = readCloseCode(p);
  });
  WsClientOptions opts;
  opts.maxMessageSize = 1000;
  WsRun run(opts);
  REQUIRE(run.connect(server.url()));
  REQUIRE(run.untilClosed());
  CHECK_EQ(run.rec.messages.size(), size_t{1});
  CHECK_EQ(run.rec.code, kTooBig);
  CHECK(!run.rec.error.empty());
  server.join();
  CHECK_EQ(sent, kTooBig);
}

TEST("ws client: invalid UTF-8 in a text message fails with 1007") {
  TestServer server([&](Peer& p) {
    if (acceptWs(p).empty()) return;
    p.write(serverFrame(1, "ok\xc0\xaf"));
    readCloseCode(p);
  });
  WsRun run;
  REQUIRE(run.connect(server.url()));
  REQUIRE(run.untilClosed());
  CHECK(run.rec.messages.empty());
  CHECK_EQ(run.rec.code, kInvalidPayload);
}

TEST("ws client: connection dropped without a close frame") {
  TestServer server([](Peer& p) {
    if (acceptWs(p).empty()) return;
    p.write(serverFrame(1, "bye"));
  });
  WsRun run;
  REQUIRE(run.connect(server.url()));
  REQUIRE(run.untilClosed());
  CHECK_EQ(run.rec.messages.size(), size_t{1});
  CHECK_EQ(run.rec.code, kAbnormal);
  CHECK(contains(run.rec.error, "without a close frame"));
}

TEST("ws client: connection refused is reported once, with an error") {
  WsRun run;
  REQUIRE(run.connect("ws://127.0.0.1:" + std::to_string(closedPort()) + "/"));
  REQUIRE(run.untilClosed());
  CHECK_EQ(run.rec.closedCount, 1);
  CHECK(!run.rec.opened);
  CHECK_EQ(run.rec.code, kAbnormal);
  CHECK(contains(run.rec.error, "refused"));
  CHECK_EQ(run.loop.watched(), size_t{0});
  run.loop.runFor(10);
  CHECK_EQ(run.rec.closedCount, 1);
}

TEST("ws client: arguments refused synchronously, without a callback") {
  WsRun run;
  std::string err;
  CHECK(!run.client->connect("http://127.0.0.1/", err));
  CHECK(contains(err, "scheme"));
  CHECK(!run.client->connect("wss://127.0.0.1/", err));  // no TLS context
  CHECK(contains(err, "TLS"));
  WsClientOptions bad;
  bad.headers = {{"Connection", "close"}};
  WsRun run2(bad);
  CHECK(!run2.client->connect("ws://127.0.0.1:1/", err));
  CHECK(contains(err, "Connection"));
  CHECK_EQ(run.rec.closedCount + run2.rec.closedCount, 0);
  CHECK_EQ(run.loop.watched(), size_t{0});
}

TEST("ws client: host name resolved on the helper thread, and 'localhost' without it") {
  TestServer server(echoScript);
  WsRun run;
  REQUIRE(run.connect("ws://127.1:" + std::to_string(server.port()) + "/"));
  run.rec.onOpenHook = [&] { run.client->close(); };
  REQUIRE(run.untilClosed());
  CHECK(run.rec.opened);
  CHECK_EQ(run.rec.error, "");

  TestServer server2(echoScript);
  WsRun run2;
  REQUIRE(run2.connect("ws://localhost:" + std::to_string(server2.port()) + "/"));
  run2.rec.onOpenHook = [&] { run2.client->close(); };
  REQUIRE(run2.untilClosed());
  CHECK(run2.rec.opened);
  CHECK_EQ(run2.rec.error, "");
}

TEST("ws client: IPv6 literal, and fallback to the next address of 'localhost'") {
  TestServer server(echoScript, nullptr, true);
  if (!server.listening) return;  // no IPv6 loopback here
  WsRun run;
  REQUIRE(run.connect("ws://[::1]:" + std::to_string(server.port()) + "/"));
  run.rec.onOpenHook = [&] { run.client->close(); };
  REQUIRE(run.untilClosed());
  CHECK(run.rec.opened);
  CHECK_EQ(run.rec.error, "");

  // Nothing on 127.0.0.1 at this port: refused there, then connected on ::1.
  TestServer server2(echoScript, nullptr, true);
  REQUIRE(server2.listening);
  WsRun run2;
  REQUIRE(run2.connect("ws://localhost:" + std::to_string(server2.port()) + "/"));
  run2.rec.onOpenHook = [&] { run2.client->close(); };
  REQUIRE(run2.untilClosed());
  CHECK(run2.rec.opened);
  CHECK_EQ(run2.rec.error, "");
}

TEST("ws client: destroyed while resolving") {
  TestLoop loop;
  WsRecorder rec;
  for (int i = 0; i < 4; ++i) {
    auto c = std::make_unique<WsClient>(loop, rec);
    std::string err;
    REQUIRE(c->connect(i % 2 ? "ws://127.1:9/" : "ws://127.0.1:9/", err));
    CHECK_EQ(loop.watched(), size_t{1});  // the resolver's eventfd
    c.reset();
    CHECK_EQ(loop.watched(), size_t{0});
  }
  loop.runFor(20);
  CHECK_EQ(rec.closedCount, 0);
  CHECK_EQ(loop.errors, 0);
}

TEST("ws client: close before open and abort report once, synchronously") {
  std::atomic<bool> gotRequest{false};
  TestServer server([&](Peer& p) {
    std::string head;
    gotRequest = p.readHead(head);  // never answers
    p.waitEof();
  });
  WsRun run;
  REQUIRE(run.connect(server.url()));
  REQUIRE(run.loop.runUntil([&] { return gotRequest.load(); }));
  CHECK(run.client->state() == WsClient::State::Connecting);
  run.client->abort("handshake timeout");
  CHECK_EQ(run.rec.closedCount, 1);
  CHECK_EQ(run.rec.code, kAbnormal);
  CHECK_EQ(run.rec.error, "handshake timeout");
  run.client->abort();
  CHECK(run.client->close());
  CHECK_EQ(run.rec.closedCount, 1);
  CHECK_EQ(run.loop.watched(), size_t{0});

  WsRun run2;
  REQUIRE(run2.connect("ws://127.0.0.1:" + std::to_string(closedPort()) + "/"));
  CHECK(run2.client->close());
  CHECK_EQ(run2.rec.closedCount, 1);
  CHECK(contains(run2.rec.error, "before the connection opened"));
  run2.loop.runFor(10);
  CHECK_EQ(run2.rec.closedCount, 1);
}

TEST("ws client: the listener may destroy the client inside a callback") {
  TestServer server([](Peer& p) {
    if (acceptWs(p).empty()) return;
    // Several messages in one write: the client dies in the middle of a parsed batch.
    p.write(concat({serverFrame(1, "one"), serverFrame(1, "two"), serverFrame(1, "three")}));
    p.waitEof();
  });
  TestLoop loop;
  WsRecorder rec;
  WsClient* c = new WsClient(loop, rec);
  rec.onMessageHook = [&](int, const std::string&) {
    delete c;
    c = nullptr;
  };
  std::string err;
  REQUIRE(c->connect(server.url(), err));
  REQUIRE(loop.runUntil([&] { return c == nullptr; }));
  loop.runFor(10);
  CHECK_EQ(rec.messages.size(), size_t{1});
  CHECK_EQ(rec.closedCount, 0);
  CHECK_EQ(loop.watched(), size_t{0});
  CHECK_EQ(loop.errors, 0);
}

TEST("ws client: abort from inside onMessage stops delivery") {
  TestServer server([](Peer& p) {
    if (acceptWs(p).empty()) return;
    p.write(concat({serverFrame(1, "one"), serverFrame(1, "two")}));
    p.waitEof();
  });
  WsRun run;
  run.rec.onMessageHook = [&](int, const std::string&) { run.client->abort("enough"); };
  REQUIRE(run.connect(server.url()));
  REQUIRE(run.untilClosed());
  run.loop.runFor(10);
  CHECK_EQ(run.rec.messages.size(), size_t{1});
  CHECK_EQ(run.rec.closedCount, 1);
  CHECK_EQ(run.rec.error, "enough");
}

TEST("ws client: a large message is queued, flushed on EPOLLOUT and echoed back") {
  TestServer server(echoScript);
  WsRun run;
  REQUIRE(run.connect(server.url()));
  REQUIRE(run.loop.runUntil([&] { return run.rec.opened; }));
  std::string big(8 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + (i >> 12));
  REQUIRE(run.client->send(2, u8(big), big.size()));
  CHECK(run.client->bufferedAmount() <= big.size() + 14);
  REQUIRE(run.loop.runUntil([&] { return !run.rec.messages.empty() || run.rec.closed(); }));
  CHECK_EQ(run.client->bufferedAmount(), size_t{0});
  REQUIRE_EQ(run.rec.messages.size(), size_t{1});
  CHECK(run.rec.messages[0].second == big);
  run.client->close();
  REQUIRE(run.untilClosed());
  CHECK_EQ(run.rec.error, "");
}

// ---------------------------------------------------------------------------------------
// TLS.

TEST("ws client: wss with the CA file; verification fails without it or for another name") {
  TlsFixture& tls = tlsFixture();
  REQUIRE(tls.ok);
  SslCtxPtr trusting = clientContext(true);
  SslCtxPtr system = clientContext(false);
  REQUIRE(trusting && system);

  {
    TestServer server(echoScript, tls.server);
    WsClientOptions opts;
    opts.tls.ctx = trusting.get();
    WsRun run(opts);
    REQUIRE(run.connect("wss://localhost:" + std::to_string(server.port()) + "/secure"));
    run.rec.onOpenHook = [&] { run.client->send(1, u8("over tls"), 8); };
    run.rec.onMessageHook = [&](int, const std::string&) { run.client->close(kNormal, "ok"); };
    REQUIRE(run.untilClosed());
    CHECK(run.rec.opened);
    REQUIRE_EQ(run.rec.messages.size(), size_t{1});
    CHECK_EQ(run.rec.messages[0].second, "over tls");
    CHECK_EQ(run.rec.code, kNormal);
    CHECK_EQ(run.rec.reason, "ok");
    CHECK_EQ(run.rec.error, "");
  }
  {
    TestServer server(echoScript, tls.server);
    WsClientOptions opts;
    opts.tls.ctx = system.get();
    WsRun run(opts);
    REQUIRE(run.connect("wss://localhost:" + std::to_string(server.port()) + "/"));
    REQUIRE(run.untilClosed());
    CHECK(!run.rec.opened);
    CHECK_EQ(run.rec.code, kAbnormal);
    CHECK(contains(run.rec.error, "certificate verification failed"));
  }
  {
    TestServer server(echoScript, tls.server);
    WsClientOptions opts;
    opts.tls.ctx = trusting.get();
    opts.tls.serverName = "other.example";
    WsRun run(opts);
    REQUIRE(run.connect("wss://localhost:" + std::to_string(server.port()) + "/"));
    REQUIRE(run.untilClosed());
    CHECK(!run.rec.opened);
    CHECK(contains(run.rec.error, "hostname mismatch"));
  }
  {
    // Verification off: the name no longer matters either.
    TlsContextOptions o;
    o.verifyPeer = false;
    std::string err;
    SslCtxPtr lax = makeClientTlsContext(o, err);
    REQUIRE(lax != nullptr);
    TestServer server(echoScript, tls.server);
    WsClientOptions opts;
    opts.tls.ctx = lax.get();
    opts.tls.serverName = "other.example";
    WsRun run(opts);
    REQUIRE(run.connect("wss://127.0.0.1:" + std::to_string(server.port()) + "/"));
    run.rec.onOpenHook = [&] { run.client->close(); };
    REQUIRE(run.untilClosed());
    CHECK(run.rec.opened);
    CHECK_EQ(run.rec.error, "");
  }
  std::string err;
  TlsContextOptions missing;
  missing.caFile = "/nonexistent/ca.pem";
  CHECK(makeClientTlsContext(missing, err) == nullptr);
  CHECK(contains(err, "/nonexistent/ca.pem"));
}

// ---------------------------------------------------------------------------------------
// TcpClient.

TEST("tcp client: echo, then graceful close") {
  bool eof = false;
  TestServer server([&](Peer& p) {
    while (p.fill()) {
      p.write(p.in);
      p.in.clear();
    }
    eof = true;  // the client's FIN came after all its data
  });
  TestLoop loop;
  TcpRecorder rec;
  TcpClient c(loop, rec);
  std::string err;
  REQUIRE(c.connect("127.0.0.1", server.port(), nullptr, err));
  CHECK(c.send(u8("queued "), 7));  // before connect: goes out first once connected
  rec.onConnectHook = [&] { c.send(u8("ping"), 4); };
  REQUIRE(loop.runUntil([&] { return rec.data.size() >= 11 || rec.closedCount; }));
  CHECK(rec.connected);
  CHECK_EQ(rec.data, "queued ping");
  c.close();
  CHECK(!c.send(u8("x"), 1));
  REQUIRE(loop.runUntil([&] { return rec.closedCount > 0; }));
  CHECK_EQ(rec.closedCount, 1);
  CHECK_EQ(rec.error, "");
  CHECK(c.closed());
  CHECK_EQ(loop.watched(), size_t{0});
  server.join();
  CHECK(eof);
}

TEST("tcp client: pause and resume reading") {
  TestServer server([](Peer& p) {
    p.write("hello");
    ::shutdown(p.fd, SHUT_WR);  // then EOF: must also wait for resume
    p.waitEof();
  });
  TestLoop loop;
  TcpRecorder rec;
  TcpClient c(loop, rec);
  rec.onConnectHook = [&] { c.pauseReading(); };
  std::string err;
  REQUIRE(c.connect("127.0.0.1", server.port(), nullptr, err));
  REQUIRE(loop.runUntil([&] { return rec.connected; }));
  loop.runFor(60);
  CHECK(c.readingPaused());
  CHECK_EQ(rec.data, "");
  CHECK_EQ(rec.closedCount, 0);
  c.resumeReading();
  REQUIRE(loop.runUntil([&] { return rec.closedCount > 0; }));
  CHECK_EQ(rec.data, "hello");
  CHECK_EQ(rec.error, "");
}

TEST("tcp client: close() before connected still delivers what was queued") {
  std::string got;
  TestServer server([&](Peer& p) {
    while (p.fill()) {
    }
    got = p.in;
  });
  TestLoop loop;
  TcpRecorder rec;
  TcpClient c(loop, rec);
  std::string err;
  REQUIRE(c.connect("localhost", server.port(), nullptr, err));
  CHECK(c.send(u8("abc"), 3));
  c.close();
  CHECK(!c.send(u8("d"), 1));
  REQUIRE(loop.runUntil([&] { return rec.closedCount > 0; }));
  CHECK(rec.connected);
  CHECK_EQ(rec.error, "");
  server.join();
  CHECK_EQ(got, "abc");
}

TEST("tcp client: connection refused") {
  TestLoop loop;
  TcpRecorder rec;
  TcpClient c(loop, rec);
  std::string err;
  REQUIRE(c.connect("127.0.0.1", closedPort(), nullptr, err));
  REQUIRE(loop.runUntil([&] { return rec.closedCount > 0; }));
  CHECK(!rec.connected);
  CHECK(contains(rec.error, "refused"));
  CHECK(!c.send(u8("x"), 1));
  CHECK(!c.connect("127.0.0.1", 1, nullptr, err));  // single use
}

TEST("tcp client: TLS echo to an IP address (IP SAN verified)") {
  TlsFixture& tls = tlsFixture();
  REQUIRE(tls.ok);
  SslCtxPtr ctx = clientContext(true);
  REQUIRE(ctx != nullptr);
  TestServer server(
      [](Peer& p) {
        while (p.fill()) {
          p.write(p.in);
          p.in.clear();
        }
      },
      tls.server);
  TestLoop loop;
  TcpRecorder rec;
  TcpClient c(loop, rec);
  TlsOptions opts;
  opts.ctx = ctx.get();
  std::string err;
  REQUIRE(c.connect("127.0.0.1", server.port(), &opts, err));
  ctx.reset();  // the client holds its own reference
  std::string payload(4 << 20, 'q');
  for (size_t i = 0; i < payload.size(); i += 4096) payload[i] = static_cast<char>(i >> 12);
  rec.onConnectHook = [&] { c.send(u8(payload), payload.size()); };
  REQUIRE(loop.runUntil([&] { return rec.data.size() >= payload.size() || rec.closedCount; }));
  CHECK(rec.data == payload);
  c.close();
  REQUIRE(loop.runUntil([&] { return rec.closedCount > 0; }));
  CHECK_EQ(rec.error, "");
}
