// ramp: N connections, --concurrency of them connecting or handshaking at a time; each is
// reset (SO_LINGER 0, so a RST, not a FIN) as soon as its 101 is verified. The RST keeps
// TIME_WAIT off both sides, so repeated runs do not eat the ephemeral ports, and the
// server's cost is the handshake plus the teardown of a reset socket. The rate is
// handshakes over the time from the first connect() to the last verified 101; with --tls
// each handshake is TCP + a full TLS handshake (unless --tls-resume) + the upgrade.
#include <cstdio>
#include <memory>

#include "client.h"
#include "histogram.h"
#include "modes.h"
#include "tls-transport.h"

namespace loadgen {
namespace {

class RampMode {
 public:
  static constexpr bool kNoDelay = false;
  static constexpr bool kWatchStdin = false;

  bool raw() const { return false; }
  void onOpen(auto& cl, Conn& c, uint64_t now) {
    ++handshakes_;
    latency_.record(now - c.startedNs);
    lastNs_ = now;
    cl.close(c, true);
  }
  void onMessage(auto&, Conn&, uint64_t, uint64_t) {}
  void onBytes(auto&, Conn&, size_t, uint64_t) {}
  void afterRead(auto&, Conn&, uint64_t) {}
  void onLost(Conn&) {}
  void onAllAttempted(auto&, uint64_t now) {
    doneNs_ = now;
    finished_ = true;
  }
  uint64_t deadline() const { return ~uint64_t(0); }
  bool done(const auto&, uint64_t) const { return finished_; }

  void report(const auto& cl, uint64_t now) const {
    uint64_t end = handshakes_ ? lastNs_ : (finished_ ? doneNs_ : now);
    double seconds = end > cl.startNs() ? double(end - cl.startNs()) / 1e9 : 0;
    // Share of one core used over the whole run: on loopback the client's connect() and
    // close() also carry the server side's TCP work, so this is often the limit here.
    double cpuPct = now > cl.startNs() ? 100.0 * double(cpuNs()) / double(now - cl.startNs()) : 0;
    std::printf(
        "{\"mode\":\"ramp\",\"handshakes\":%llu,\"seconds\":%.3f,"
        "\"handshakes_per_sec\":%.1f,\"errors\":%llu,\"client_cpu_pct\":%.1f,\"latency_us\":",
        static_cast<unsigned long long>(handshakes_), seconds,
        seconds > 0 ? double(handshakes_) / seconds : 0.0,
        static_cast<unsigned long long>(cl.errors()), cpuPct);
    latency_.printJsonUs(stdout);
    std::fputc(',', stdout);
    cl.printErrorDetail(stdout);
    cl.printTls(stdout);
    std::printf("}\n");
  }

 private:
  Histogram latency_;  // connect() to verified 101
  uint64_t handshakes_ = 0;
  uint64_t lastNs_ = 0;
  uint64_t doneNs_ = 0;
  bool finished_ = false;
};

template <class Transport>
int runWith(const Options& o) {
  auto mode = std::make_unique<RampMode>();
  Client<RampMode, Transport> client(o, *mode);
  if (!client.run()) return 1;
  mode->report(client, nowNs());
  return 0;
}

}  // namespace

int runRamp(const Options& o) {
  return o.tls ? runWith<TlsTransport>(o) : runWith<PlainTransport>(o);
}

}  // namespace loadgen
