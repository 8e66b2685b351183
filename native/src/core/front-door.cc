// The worker's front door (docs/security.md, "Behind proxies"; docs/config.md, log.access):
// the PROXY protocol header of a proxy_protocol listener, the client behind trusted proxies,
// the per-address limits applied to that client, and the access log. Kept apart from
// worker.cc: none of it runs for a server that configures none of it.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "core/access-log.h"
#include "core/peer-text.h"
#include "core/server.h"
#include "core/worker.h"
#include "protocol/http-fields.h"
#include "protocol/proxy-header.h"
#include "security/conn-limiter.h"
#include "security/forwarded.h"

namespace lapps {

namespace {

PeerAddress fromProxy(const ProxyAddress& a) {
  PeerAddress p{};
  if (a.v6) {
    p.v6.sin6_family = AF_INET6;
    std::memcpy(&p.v6.sin6_addr, a.addr, 16);
    p.v6.sin6_port = htons(a.port);
  } else {
    p.v4.sin_family = AF_INET;
    std::memcpy(&p.v4.sin_addr, a.addr, 4);
    p.v4.sin_port = htons(a.port);
  }
  return p;
}

// The client's text in a log field: bounded (a request target may take kilobytes).
std::string shown(std::string_view s) {
  constexpr size_t kMax = 512;
  if (s.size() <= kMax) return std::string(s);
  return std::string(s.substr(0, kMax)) + "...";
}

LogField text(const char* key, std::string value) {
  return LogField{key, std::move(value)};
}

LogField number(const char* key, int64_t value) {
  return LogField{key, {}, value, true};
}

}  // namespace

void Worker::readProxyHeader(Connection& c) {
  // The header's bytes so far wait in the handshake buffer (its capacity is far above
  // kMaxProxyHeader). Only the header is taken from the socket: peek, then read exactly
  // its bytes, so what follows (a TLS ClientHello, the HTTP request) stays in the kernel
  // for the transport to read as usual. A partial header is taken whole (every byte of it
  // belongs to the header), so a slow sender does not keep the socket readable.
  HandshakeData& h = *c.hs;
  auto* buf = reinterpret_cast<uint8_t*>(h.buf.get());
  const ssize_t n = ::recv(c.fd, buf + h.size, kMaxProxyHeader - h.size, MSG_PEEK);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    refuseProxyHeader(c, "PROXY header: read failed");
    return;
  }
  if (n == 0) {
    refuseProxyHeader(c, "PROXY header: connection closed before it was complete");
    return;
  }
  const size_t have = h.size + size_t(n);
  ProxyHeader header;
  const char* why = nullptr;
  const ProxyParse parsed = parseProxyHeader(buf, have, header, why);
  if (parsed == ProxyParse::Invalid) {
    refuseProxyHeader(c, why);
    return;
  }
  if (parsed == ProxyParse::NeedMore && have >= kMaxProxyHeader) {
    refuseProxyHeader(c, "PROXY header longer than 1 KiB");
    return;
  }
  const size_t take = parsed == ProxyParse::Done ? header.length - h.size : size_t(n);
  if (::recv(c.fd, buf + h.size, take, 0) != ssize_t(take)) {
    refuseProxyHeader(c, "PROXY header: read failed");
    return;
  }
  stats_->add(Counter::BytesIn, take);
  h.size += take;
  if (parsed == ProxyParse::NeedMore) return;

  h.size = 0;  // the buffer is the HTTP request's from here on
  // LOCAL (a balancer's own health check) and UNKNOWN name no client: the socket's peer stands.
  if (header.hasClient) h.peer = fromProxy(header.source);
  // The server-wide ACL saw the balancer at accept; now it sees the client.
  if (policy_->acl && !policy_->acl->allows(&h.peer.sa)) {
    stats_->add(Counter::AclRefusedAtAccept);
    kill(c, nullptr);
    return;
  }
  c.state = ConnState::Handshake;
  armTimer(c, h.acceptedMs + server_.settings().handshakeTimeoutMs);
}

void Worker::refuseProxyHeader(Connection& c, const char* why) {
  // Closed without an answer: what sent it is a balancer misconfigured, or not a balancer.
  stats_->add(Counter::ProxyHeaderRefused);
  log(LogLevel::Debug, std::string("closing connection: ") + why);
  kill(c, nullptr);
}

bool Worker::admitClient(Connection& c) {
  const Policy& policy = *policy_;
  HandshakeData& h = *c.hs;
  PeerAddress& peer = h.peer;
  // The immediate peer (after a PROXY header, the client it named: that is who sent the
  // HTTP headers) is a trusted proxy: believe its X-Forwarded-For or Forwarded.
  if (policy.trustedProxies && policy.trustedProxies->allows(&peer.sa)) {
    const std::string_view head(h.buf.get(), h.parser.request().headerBytes);
    std::string xff;
    std::string fwd;
    joinHeaderValues(head, "X-Forwarded-For", xff);
    if (xff.empty()) joinHeaderValues(head, "Forwarded", fwd);
    ForwardedAddress client;
    if ((!xff.empty() || !fwd.empty()) &&
        forwardedClient(*policy.trustedProxies, &peer.sa, xff, fwd, client)) {
      if (c.counted) {
        // Counted under the proxy's address at accept (trusted_proxies was reloaded since):
        // the count moves to the client, so that teardown gives back what was taken.
        server_.limiter().releaseAddress(&peer.sa);
        c.counted = false;
        c.addressPending = true;
      }
      static_assert(sizeof(ForwardedAddress) == sizeof(PeerAddress));
      std::memcpy(&peer, &client, sizeof peer);
      // The server-wide ACL saw the proxy at accept; now it sees the client.
      if (policy.acl && !policy.acl->allows(&peer.sa)) {
        stats_->add(Counter::AclRefusedAtHandshake);
        c.rejectHandshake(*this, 403, "forbidden");
        return false;
      }
    }
  }
  if (!c.addressPending) return true;
  // Counted in the server-wide total at accept; its address only now that it is known.
  c.addressPending = false;
  ConnLimiter& limiter = server_.limiter();
  switch (limiter.admitAddress(&peer.sa, nowMs_)) {
    case ConnLimiter::Verdict::Ok:
      c.counted = true;  // released whole at teardown
      return true;
    case ConnLimiter::Verdict::AddressRate:
      limiter.releaseTotal();
      stats_->add(Counter::PerIpRateLimit);
      c.rejectHandshake(*this, 429, "too many new connections from your address");
      return false;
    case ConnLimiter::Verdict::ServerFull:  // not an answer of admitAddress
    case ConnLimiter::Verdict::AddressFull:
      break;
  }
  limiter.releaseTotal();
  stats_->add(Counter::PerIpConnectionLimit);
  c.rejectHandshake(*this, 503, "too many connections from your address");
  return false;
}

void Worker::logHandshake(Connection& c, int status, std::string_view reason) {
  if (!c.hs) return;  // called before the handshake data is released, never after
  const HandshakeData& h = *c.hs;
  if (status != 101) {
    switch (accessLimiter_.note(h.peer)) {
      case AccessLimiter::Verdict::Suppress:
        return;
      case AccessLimiter::Verdict::LogAndOpen:
        addTimer(AccessLimiter::kWindowMs, [this] { endAccessWindow(); });
        break;
      case AccessLimiter::Verdict::Log:
        break;
    }
  }
  std::string_view path;
  std::string_view origin;
  const HandshakeParser& p = h.parser;
  if (p.requestLineParsed()) path = p.target();
  if (p.status() == HandshakeParser::Status::Complete) origin = p.request().origin;
  const uint64_t bytesIn = h.size;
  Event e;
  e.level = LogLevel::Info;
  e.source = "access";
  e.message = "handshake " + std::to_string(status);
  e.fields.reserve(9);
  e.fields.push_back(number("status", status));
  if (!reason.empty()) e.fields.push_back(text("reason", std::string(reason)));
  e.fields.push_back(text("path", shown(path)));
  e.fields.push_back(text("client", peerIp(h.peer)));
  e.fields.push_back(number("port", peerPort(h.peer)));
  if (!origin.empty()) e.fields.push_back(text("origin", shown(origin)));
  e.fields.push_back(number("duration_ms", int64_t(nowMs_ - h.acceptedMs)));
  e.fields.push_back(number("bytes_in", int64_t(bytesIn)));
  e.fields.push_back(number("bytes_out", int64_t(c.out.bytes())));
  server_.events().post(std::move(e));
}

void Worker::endAccessWindow() {
  std::vector<AccessLimiter::Suppressed> list;
  uint64_t others = 0;
  accessLimiter_.endWindow(list, others);
  const std::string seconds = std::to_string(AccessLimiter::kWindowMs / 1000);
  auto post = [&](std::string client, uint64_t count) {
    Event e;
    e.level = LogLevel::Info;
    e.source = "access";
    e.message = std::to_string(count) + " more refused handshake(s) from " +
                (client.empty() ? std::string("other addresses") : client) +
                " not logged in the last " + seconds + " s";
    if (!client.empty()) e.fields.push_back(text("client", std::move(client)));
    e.fields.push_back(number("suppressed", int64_t(count)));
    server_.events().post(std::move(e));
  };
  for (const AccessLimiter::Suppressed& s : list) post(peerIp(s.client), s.count);
  if (others) post({}, others);
}

}  // namespace lapps
