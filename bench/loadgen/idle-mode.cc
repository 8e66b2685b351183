// idle: open N connections (handshake included), print {"event":"ready","opened":n} once
// every attempt has succeeded or failed, then hold them: nothing is sent except pongs to
// the server's pings, so its idle/ping timers keep them alive. The hold ends at --hold,
// at stdin EOF (when stdin is a pipe or tty) or on SIGTERM/SIGINT. After the report the
// connections are reset, not closed with a FIN: tens of thousands of TIME_WAIT sockets
// would otherwise slow the connect() of the next run.
#include <sys/resource.h>

#include <cstdio>
#include <memory>

#include "client.h"
#include "modes.h"
#include "tls-transport.h"

namespace loadgen {
namespace {

class IdleMode {
 public:
  static constexpr bool kNoDelay = false;
  static constexpr bool kWatchStdin = true;

  explicit IdleMode(const Options& o) : o_(o) {}

  bool raw() const { return false; }
  void onOpen(auto&, Conn&, uint64_t) { ++opened_; }
  void onMessage(auto&, Conn&, uint64_t, uint64_t) { ++messages_; }
  void onBytes(auto&, Conn&, size_t, uint64_t) {}
  void afterRead(auto&, Conn&, uint64_t) {}
  void onLost(Conn&) {
    if (readyNs_ != kNever) ++lostWhileHeld_;
  }
  void onAllAttempted(auto& cl, uint64_t now) {
    readyNs_ = now;
    openSeconds_ = double(now - cl.startNs()) / 1e9;
    if (o_.hold > 0) holdEndNs_ = now + secondsToNs(o_.hold);
    std::printf("{\"event\":\"ready\",\"opened\":%llu}\n",
                static_cast<unsigned long long>(opened_));
    std::fflush(stdout);
  }
  uint64_t deadline() const { return holdEndNs_; }
  bool done(const auto&, uint64_t now) const { return now >= holdEndNs_; }

  void report(const auto& cl, uint64_t now) const {
    double held = readyNs_ != kNever && now > readyNs_ ? double(now - readyNs_) / 1e9 : 0;
    std::printf(
        "{\"mode\":\"idle\",\"opened\":%llu,\"errors\":%llu,\"seconds_to_open\":%.3f,"
        "\"held_seconds\":%.3f,\"open_at_end\":%u,\"lost_while_held\":%llu,"
        "\"pongs\":%llu,\"messages\":%llu,\"fd_limit\":%llu,",
        static_cast<unsigned long long>(opened_), static_cast<unsigned long long>(cl.errors()),
        openSeconds_, held, cl.openCount(), static_cast<unsigned long long>(lostWhileHeld_),
        static_cast<unsigned long long>(cl.pongsSent()), static_cast<unsigned long long>(messages_),
        fdLimit());
    cl.printErrorDetail(stdout);
    cl.printTls(stdout);
    std::printf("}\n");
  }

 private:
  static constexpr uint64_t kNever = ~uint64_t(0);

  // RLIMIT_NOFILE after main() raised it: a bound on "opened" worth seeing in the result.
  static unsigned long long fdLimit() {
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    return static_cast<unsigned long long>(lim.rlim_cur);
  }

  const Options& o_;
  uint64_t opened_ = 0;
  uint64_t messages_ = 0;  // data messages the server sent unasked
  uint64_t lostWhileHeld_ = 0;
  uint64_t readyNs_ = kNever;
  uint64_t holdEndNs_ = kNever;
  double openSeconds_ = 0;
};

template <class Transport>
int runWith(const Options& o) {
  auto mode = std::make_unique<IdleMode>(o);
  Client<IdleMode, Transport> client(o, *mode);
  if (!client.run()) return 1;
  mode->report(client, nowNs());
  std::fflush(stdout);
  client.closeAll(true);
  return 0;
}

}  // namespace

int runIdle(const Options& o) {
  return o.tls ? runWith<TlsTransport>(o) : runWith<PlainTransport>(o);
}

}  // namespace loadgen
