// Command line of lapps-loadgen. The orchestrator (bench/) depends on these flags: add
// new ones, never change the meaning of existing ones.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

namespace loadgen {

enum class Mode { kEcho, kRamp, kIdle, kFanout };

// fanout: who publishes. kClient: the load generator's publisher connection sends each
// message; kServer: a publisher inside the server (credits or a rate come from the
// generator's control connection).
enum class Publisher { kClient, kServer };

struct Options {
  Mode mode = Mode::kEcho;
  std::string host = "127.0.0.1";  // IPv4 literal: no name resolution on purpose
  sockaddr_in server{};            // host:port, filled by parseOptions
  unsigned port = 0;
  std::string path = "/echo";
  uint32_t connections = 0;
  uint32_t concurrency = 0;      // connects + handshakes in flight; 0 = mode default
  std::vector<in_addr> sources;  // local addresses, round-robin; empty = kernel's choice
  double timeout = 10;           // seconds for connect + handshake of one connection
  bool tls = false;              // wss: TLS under the WebSocket (tls-transport.h)
  bool tlsResume = false;        // offer the last session: resumed, not full, handshakes
  // echo
  uint32_t size = 0;
  uint32_t inflight = 1;
  bool text = false;
  bool raw = false;
  double duration = 5;
  double warmup = 1;
  uint64_t count = 0;  // > 0: stop after this many echoed messages, no warm-up (callgrind)
  // fanout (also --size, --duration, --warmup, --raw)
  uint32_t threads = 1;  // subscriber connections are spread over this many threads
  // Flat out: publishes in flight (not yet delivered to all). 32, not less: on a busy
  // machine each wakeup may wait a scheduler slice, and a small window then measures
  // that wait instead of the server (8 gave a sixth of the rate, both processes idle).
  uint32_t window = 32;
  double rate = 0;  // publishes per second; 0 = flat out within the window
  Publisher publisher = Publisher::kClient;
  bool lappsProtocol = false;  // LAppS protocol: CBOR requests out, CBOR OONs in
  // idle
  double hold = 0;  // 0 = until stdin EOF or SIGTERM/SIGINT
};

// Parses argv into *out. Returns an empty string on success, else the message to print
// before exiting with status 2. "--help" returns the usage text itself.
std::string parseOptions(int argc, char** argv, Options* out);

extern const char* const kUsage;

}  // namespace loadgen
