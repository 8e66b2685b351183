#include "client/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

#include "base/text.h"

namespace lapps {

namespace {

SocketAddress makeV4(const in_addr& a, uint16_t port) {
  SocketAddress s{};
  auto* sin = reinterpret_cast<sockaddr_in*>(&s.storage);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr = a;
  s.len = sizeof(sockaddr_in);
  return s;
}

SocketAddress makeV6(const in6_addr& a, uint16_t port) {
  SocketAddress s{};
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&s.storage);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_addr = a;
  s.len = sizeof(sockaddr_in6);
  return s;
}

bool isLocalhost(std::string_view host) {
  constexpr std::string_view kName = "localhost";
  if (host.size() != kName.size()) return false;
  for (size_t i = 0; i < host.size(); ++i)
    if ((host[i] | 0x20) != kName[i]) return false;
  return true;
}

}  // namespace

std::string formatAddress(const SocketAddress& a) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (a.family() == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&a.storage);
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    return concatText({text, ":", std::to_string(ntohs(sin->sin_port))});
  }
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&a.storage);
  inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
  return concatText({"[", text, "]:", std::to_string(ntohs(sin6->sin6_port))});
}

bool resolveWithoutLookup(std::string_view host, uint16_t port, std::vector<SocketAddress>& out) {
  out.clear();
  if (isLocalhost(host)) {
    in_addr v4;
    v4.s_addr = htonl(INADDR_LOOPBACK);
    out.push_back(makeV4(v4, port));
    out.push_back(makeV6(in6addr_loopback, port));
    return true;
  }
  if (host.size() >= INET6_ADDRSTRLEN) return false;
  char text[INET6_ADDRSTRLEN];
  std::memcpy(text, host.data(), host.size());
  text[host.size()] = '\0';
  // inet_pton is a pure parser (unlike getaddrinfo with AI_NUMERICHOST, which may still
  // read configuration files).
  in_addr v4;
  if (inet_pton(AF_INET, text, &v4) == 1) {
    out.push_back(makeV4(v4, port));
    return true;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, text, &v6) == 1) {
    out.push_back(makeV6(v6, port));
    return true;
  }
  return false;
}

struct AsyncResolve::Shared {
  int efd = -1;
  std::mutex mutex;
  bool done = false;
  std::vector<SocketAddress> addresses;
  std::string error;

  ~Shared() {
    if (efd >= 0) ::close(efd);
  }
};

namespace {

void lookup(const std::shared_ptr<AsyncResolve::Shared>& s, const std::string& host,
            uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  std::vector<SocketAddress> found;
  std::string error;
  if (rc != 0) {
    error = concatText({"cannot resolve '", host,
                        "': ", rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc)});
  } else {
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
      if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
          ai->ai_addrlen > sizeof(sockaddr_storage))
        continue;
      SocketAddress a{};
      std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
      a.len = ai->ai_addrlen;
      found.push_back(a);
    }
    freeaddrinfo(res);
    if (found.empty()) error = concatText({"cannot resolve '", host, "': no IPv4 or IPv6 address"});
  }
  {
    std::lock_guard<std::mutex> lock(s->mutex);
    s->addresses = std::move(found);
    s->error = std::move(error);
    s->done = true;
  }
  const uint64_t one = 1;
  // Cannot fail in a way that matters: the counter cannot overflow with one write.
  [[maybe_unused]] ssize_t n = ::write(s->efd, &one, sizeof one);
}

}  // namespace

std::unique_ptr<AsyncResolve> AsyncResolve::start(std::string host, uint16_t port,
                                                  std::string& err) {
  auto s = std::make_shared<Shared>();
  s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s->efd < 0) {
    err = std::string("eventfd: ") + std::strerror(errno);
    return nullptr;
  }
  try {
    std::thread([s, host = std::move(host), port] { lookup(s, host, port); }).detach();
  } catch (const std::system_error& e) {
    err = std::string("cannot start the resolver thread: ") + e.what();
    return nullptr;
  }
  return std::unique_ptr<AsyncResolve>(new AsyncResolve(std::move(s)));
}

AsyncResolve::~AsyncResolve() = default;

int AsyncResolve::fd() const {
  return s_->efd;
}

bool AsyncResolve::done() const {
  std::lock_guard<std::mutex> lock(s_->mutex);
  return s_->done;
}

bool AsyncResolve::result(std::vector<SocketAddress>& out, std::string& err) const {
  std::lock_guard<std::mutex> lock(s_->mutex);
  if (!s_->error.empty()) {
    err = s_->error;
    return false;
  }
  out = s_->addresses;
  return true;
}

}  // namespace lapps
