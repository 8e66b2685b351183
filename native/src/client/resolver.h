// Host name resolution that never blocks the loop thread: literals and "localhost" are
// answered at once; other names go to getaddrinfo on a short-lived helper thread that
// signals an eventfd the loop watches.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lapps {

struct SocketAddress {
  sockaddr_storage storage;
  socklen_t len;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
};

// "192.0.2.1:80" or "[2001:db8::1]:443", for error messages.
std::string formatAddress(const SocketAddress& a);

// True if `host` (a name, an IPv4 literal or an unbracketed IPv6 literal) needs no lookup;
// `out` then holds its addresses. "localhost" gives 127.0.0.1 then ::1 (RFC 6761 §6.3: it
// must not go to DNS).
bool resolveWithoutLookup(std::string_view host, uint16_t port, std::vector<SocketAddress>& out);

// One getaddrinfo call on a helper thread. Destroying it while the lookup runs is safe: the
// thread finishes on its own and the result is dropped.
class AsyncResolve {
 public:
  // Null and `err` set if the eventfd or the thread cannot be created.
  static std::unique_ptr<AsyncResolve> start(std::string host, uint16_t port, std::string& err);

  AsyncResolve(const AsyncResolve&) = delete;
  AsyncResolve& operator=(const AsyncResolve&) = delete;
  ~AsyncResolve();

  // Becomes readable (EPOLLIN) once the lookup has finished. Stays open until both this
  // object and the thread are done with it, so its number is never reused under the thread.
  int fd() const;

  // Once done(): the addresses, or false and `err`.
  bool done() const;
  bool result(std::vector<SocketAddress>& out, std::string& err) const;

  struct Shared;

 private:
  explicit AsyncResolve(std::shared_ptr<Shared> s) : s_(std::move(s)) {}
  std::shared_ptr<Shared> s_;
};

}  // namespace lapps
