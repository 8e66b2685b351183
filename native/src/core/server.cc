#include "core/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "base/text.h"
#include "core/worker.h"
#include "io/clock.h"

namespace lapps {

Server::Server(Settings settings, EventChannel& events, std::unique_ptr<ServiceFactory> factory)
    : settings_(std::move(settings)),
      events_(events),
      stats_(new WorkerStats[settings_.workers]),
      limiter_(ConnLimits{settings_.maxConnections, settings_.maxConnectionsPerIp,
                          settings_.newConnectionsPerIpPerSec}),
      factory_(std::move(factory)) {
  std::memset(static_cast<void*>(stats_.get()), 0, sizeof(WorkerStats) * settings_.workers);
  for (uint32_t i = 0; i < settings_.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(*this, i));
  }
}

Server::~Server() {
  if (started_) {
    // Destroyed while running or draining (process teardown): no more drain time, stop
    // the workers now (they still send 1001) and wait for them.
    pushStop(monotonicMs());
    if (stopper_.joinable()) {
      stopper_.join();
    } else {
      for (auto& w : workers_) w->join();
      for (auto& r : standalone_) r->join();
    }
  }
  factory_.reset();
}

void Server::pushStop(uint64_t deadlineMs) {
  for (auto& w : workers_) {
    InboxMessage m;
    m.kind = InboxMessage::Kind::Stop;
    m.deadlineMs = deadlineMs;
    w->inbox().push(std::move(m));
  }
  for (auto& r : standalone_) r->stop(deadlineMs);
}

const ServiceRuntime* Server::route(std::string_view target) const {
  // Routing ignores the query string: "/echo?room=1" is served by "/echo".
  size_t q = target.find('?');
  if (q != std::string_view::npos) target = target.substr(0, q);
  auto it = byTarget_.find(std::string(target));
  return it == byTarget_.end() ? nullptr : it->second;
}

bool Server::loadServices(std::string& error) {
  const uint32_t w = settings_.workers;
  // Services arrive in start order (dependencies first).
  for (const ServiceSettings& s : settings_.services) {
    if (!s.started) continue;  // auto_start false and nobody depends on it
    auto rt = std::make_unique<ServiceRuntime>();
    rt->settings = s;
    // This service's message limit and the server's frame limits, kept by each instance.
    const ParserLimits limits =
        ParserLimits{s.maxMessageSize, settings_.maxFrameSize ? settings_.maxFrameSize : UINT64_MAX,
                     settings_.maxFragments ? settings_.maxFragments : UINT32_MAX};
    rt->localInstances.resize(w);
    for (uint32_t i = 0; i < s.instances; ++i) {
      std::string err;
      if (s.standalone) {
        auto runner = factory_->makeStandalone(rt->settings, i, *this, events_, err);
        if (!runner) {
          error = "service " + s.name + ": " + err;
          return false;
        }
        standalone_.push_back(std::move(runner));
        standaloneNames_.push_back(s.name);
        continue;
      }
      uint32_t wi = i % w;
      Worker& wk = *workers_[wi];
      std::unique_ptr<ServiceInstance> inst =
          factory_->makeReactive(rt->settings, i, wk, wk, *this, events_, err);
      if (!inst) {
        error = "service " + s.name + ": " + err;
        return false;
      }
      inst->setLimits(limits);
      workers_[wi]->attach(inst.get());
      rt->instanceWorker.push_back(wi);
      rt->localInstances[wi].push_back(int32_t(i));
      rt->instances.push_back(std::move(inst));
    }
    if (!s.standalone) byTarget_[s.requestTarget] = rt.get();
    services_.push_back(std::move(rt));
  }
  return true;
}

bool Server::startStandalone(std::string& error) {
  // One at a time, in start order: a service's dependencies have finished init() first.
  for (size_t i = 0; i < standalone_.size(); ++i) {
    if (!standalone_[i]->start()) {
      error = "service " + standaloneNames_[i] + ": init() failed (see the log)";
      return false;
    }
  }
  return true;
}

SendStatus Server::broadcastFromOutside(uint64_t channel, SharedBuffer* frame) {
  if (!channels_.exists(channel)) return SendStatus::NoChannel;
  for (auto& w : workers_) {
    frame->retain();
    InboxMessage m;
    m.kind = InboxMessage::Kind::Broadcast;
    m.channel = channel;
    m.frame = frame;
    w->inbox().push(std::move(m));
  }
  return SendStatus::Ok;
}

namespace {

// IPV6_V6ONLY set explicitly, never left to the system default (net.ipv6.bindv6only).
void setV6Only(int fd, const sockaddr* addr, bool v6only) {
  if (addr->sa_family != AF_INET6) return;
  int on = v6only ? 1 : 0;
  ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
}

int openListener(const sockaddr* addr, socklen_t len, bool v6only, std::string& error,
                 const std::string& where) {
  int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = where + ": socket: " + std::strerror(errno);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  setV6Only(fd, addr, v6only);
  if (::bind(fd, addr, len) != 0 || ::listen(fd, 4096) != 0) {
    error = where + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

bool Server::bindListeners(std::vector<uint16_t>& ports, std::string& error) {
  for (const ListenerSettings& l : settings_.listeners) {
    std::string where = "listen " + l.host + ":" + std::to_string(l.port);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    // Resolution happens once at start, on the main thread, never on a worker.
    int rc = ::getaddrinfo(l.host.c_str(), nullptr, &hints, &res);
    if (rc != 0 || !res) {
      error = where + ": cannot resolve host: " + ::gai_strerror(rc);
      return false;
    }
    sockaddr_storage addr{};
    std::memcpy(&addr, res->ai_addr, res->ai_addrlen);
    socklen_t len = socklen_t(res->ai_addrlen);
    ::freeaddrinfo(res);
    uint16_t port = l.port;
    if (addr.ss_family == AF_INET6) {
      reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(port);
    } else {
      reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(port);
    }
    {
      // SO_REUSEPORT would let us join another process's listener silently and share its
      // traffic. A probe bound without it fails if anyone listens there; it also picks the
      // port when the config says 0.
      int probe = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      ::setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      // Dual-stack: the port must be free for IPv4 as well.
      setV6Only(probe, reinterpret_cast<sockaddr*>(&addr), l.ipv6Only);
      if (probe < 0 || ::bind(probe, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
        error = where + ": " + std::strerror(errno);
        if (probe >= 0) ::close(probe);
        return false;
      }
      sockaddr_storage bound{};
      socklen_t blen = sizeof bound;
      ::getsockname(probe, reinterpret_cast<sockaddr*>(&bound), &blen);
      port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
      ::close(probe);
    }
    for (auto& w : workers_) {
      if (addr.ss_family == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(port);
      } else {
        reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(port);
      }
      int fd = openListener(reinterpret_cast<sockaddr*>(&addr), len, l.ipv6Only, error, where);
      if (fd < 0) return false;
      w->addListener(fd);
    }
    ports.push_back(port);
  }
  return true;
}

std::vector<uint16_t> Server::start(std::string& error) {
  std::vector<uint16_t> ports;
  if (started_) {
    error = "server already started";
    return {};
  }
  MemoryTrimmer::configureAllocator();
  // Every connection is a descriptor: raise the soft limit to the hard one, as a server
  // that holds tens of thousands of connections must.
  // A privileged process may also raise the hard limit.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    const rlimit wanted{1 << 20, 1 << 20};
    if (nofile.rlim_max >= wanted.rlim_max || ::setrlimit(RLIMIT_NOFILE, &wanted) != 0) {
      nofile.rlim_cur = nofile.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &nofile);
    }
  }
  for (auto& w : workers_) {
    if (int e = w->createError()) {
      error = concatText({"worker ", std::to_string(w->index()),
                          ": cannot create its event loop: ", std::strerror(e)});
      return {};
    }
  }
  policy_ = Policy::compile(settings_.policy, settings_.services, error);
  if (!policy_) return {};
  for (auto& w : workers_) w->setPolicy(policy_);
  if (!loadServices(error) || !bindListeners(ports, error)) return {};
  if (!startStandalone(error)) {
    for (auto& r : standalone_) r->stop(monotonicMs() + settings_.drainTimeoutMs);
    for (auto& r : standalone_) r->join();
    return {};
  }
  started_ = true;
  for (auto& w : workers_) w->start();
  return ports;
}

bool Server::reload(const PolicySettings& policy, std::string& error) {
  if (policy.tls.size() != settings_.listeners.size()) {
    error = "the number of listeners cannot change without a restart";
    return false;
  }
  for (size_t i = 0; i < policy.tls.size(); ++i) {
    if (policy.tls[i].has_value() != settings_.listeners[i].tls) {
      error =
          "listener " + std::to_string(i) + ": tls cannot be switched on or off without a restart";
      return false;
    }
  }
  std::shared_ptr<const Policy> next = Policy::compile(policy, settings_.services, error);
  if (!next) return false;
  settings_.policy = policy;
  policy_ = next;
  if (!started_ || stopRequested_) {
    for (auto& w : workers_) w->setPolicy(next);
    return true;
  }
  // Each worker swaps its own pointer on its own thread: no lock on the accept path.
  for (auto& w : workers_) {
    Worker* worker = w.get();
    worker->post([worker, next] { worker->setPolicy(next); });
  }
  return true;
}

void Server::stop(std::function<void()> done) {
  if (stopRequested_ || !started_) {
    // Nothing runs (or a stop is already under way): report completion at once.
    std::thread([done = std::move(done)] { done(); }).detach();
    return;
  }
  stopRequested_ = true;
  // One deadline for every worker and standalone service (docs/config.md, "Stopping").
  pushStop(monotonicMs() + settings_.drainTimeoutMs);
  stopper_ = std::thread([this, done = std::move(done)] {
    for (auto& w : workers_) w->join();
    for (auto& r : standalone_) r->join();
    done();
  });
}

}  // namespace lapps
