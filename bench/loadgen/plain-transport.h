// The byte stream under the WebSocket when --tls is off: the socket itself. Every call is
// the syscall, inline, so Client<Mode, PlainTransport> compiles to what the load generator
// was before it had transports. See tls-transport.h for the other one and client.h for the
// policy both follow.
#pragma once

#include <sys/uio.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>

#include "connection.h"
#include "options.h"

namespace loadgen {

class PlainTransport {
 public:
  static constexpr bool kTls = false;

  bool init(const Options&) { return true; }
  // Never called: there is no handshake below the WebSocket one.
  int handshake(Conn&) { return 1; }
  ssize_t read(Conn& c, void* buf, size_t n) { return ::read(c.fd, buf, n); }
  ssize_t write(Conn& c, const void* p, size_t n) { return ::write(c.fd, p, n); }
  ssize_t writev(Conn& c, const iovec* iov, int n) { return ::writev(c.fd, iov, n); }
  // A short read drained the socket; with EPOLLET, later data raises a new edge.
  bool drained(const Conn&, size_t got, size_t asked) const { return got < asked; }
  bool readWantsWrite(const Conn&) const { return false; }
  void release(Conn&) {}
  void printJson(FILE*) const {}
};

}  // namespace loadgen
