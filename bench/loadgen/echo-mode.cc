// echo: every connection keeps --inflight messages outstanding; each whole echoed message
// is answered by one new message (closed loop when K = 1). Frames come from a pre-built
// pool, so sending is handing out iovecs. Each connection has a FIFO of the send times of
// its K outstanding messages; latency is receive time minus the oldest of them. Messages
// that complete during the warm-up, or after the measured window, are not counted.
#include <cstdio>
#include <memory>
#include <vector>

#include "client.h"
#include "histogram.h"
#include "modes.h"
#include "tls-transport.h"

namespace loadgen {
namespace {

class EchoMode {
 public:
  static constexpr bool kNoDelay = true;
  static constexpr bool kWatchStdin = false;

  EchoMode(const Options& o, Xoshiro256& rng)
      : o_(o),
        pool_(o.size, o.text, rng),
        slots_(o.connections),
        sentNs_(size_t(o.connections) * o.inflight) {}

  bool raw() const { return o_.raw; }

  void onOpen(auto& cl, Conn& c, uint64_t now) {
    slots_[c.index].owed = o_.inflight;
    afterRead(cl, c, now);
  }

  void onMessage(auto& cl, Conn& c, uint64_t len, uint64_t now) {
    Slot& s = slots_[c.index];
    if (s.count == 0) return cl.countError(ErrorKind::kEcho);  // nothing was in flight
    uint64_t sent = sentNs_[size_t(c.index) * o_.inflight + s.head];
    if (++s.head == o_.inflight) s.head = 0;
    --s.count;
    ++s.owed;
    if (len != o_.size) cl.countError(ErrorKind::kEcho);
    ++total_;
    if (now >= startNs_ && now < endNs_) {
      if (cpuStartNs_ == 0) {  // the first counted message opens the CPU window
        cpuStartNs_ = cpuNs();
        cpuWallStartNs_ = now;
      }
      latency_.record(now - sent);
      ++messages_;
      // --count: a fixed amount of work (the window closes with the last message).
      if (o_.count && messages_ == o_.count) endNs_ = now + 1;
    }
  }

  // --raw: the reply is the frame bytes themselves; a message is a whole frame's worth.
  void onBytes(auto& cl, Conn& c, size_t n, uint64_t now) {
    Slot& s = slots_[c.index];
    s.rawBytes += n;
    while (s.rawBytes >= pool_.frameSize()) {
      s.rawBytes -= pool_.frameSize();
      onMessage(cl, c, o_.size, now);
    }
  }

  // Sends what the replies of this read earned, in one writev where possible.
  void afterRead(auto& cl, Conn& c, uint64_t now) {
    Slot& s = slots_[c.index];
    uint64_t* ring = &sentNs_[size_t(c.index) * o_.inflight];
    while (s.owed > 0) {
      iovec iov[kMaxIov];
      uint32_t taken = 0;
      int n = pool_.take(s.owed, iov, kMaxIov, &taken);
      uint32_t tail = s.head + s.count;
      for (uint32_t i = 0; i < taken; ++i, ++tail) {
        ring[tail >= o_.inflight ? tail - o_.inflight : tail] = now;
      }
      s.count += taken;
      s.owed -= taken;
      if (!cl.send(c, iov, n)) return;
    }
  }

  void onLost(Conn&) {}

  void onAllAttempted(auto&, uint64_t now) {
    if (o_.count) {
      startNs_ = now;
      endNs_ = kNever - 1;  // open until the count is reached
      return;
    }
    startNs_ = now + secondsToNs(o_.warmup);
    endNs_ = startNs_ + secondsToNs(o_.duration);
  }

  uint64_t deadline() const { return endNs_; }
  bool done(const auto& cl, uint64_t now) const {
    return now >= endNs_ || (endNs_ != kNever && cl.openCount() == 0);
  }

  void report(const auto& cl, uint64_t now) const {
    // The window is cut short if every connection failed or a signal arrived.
    uint64_t end = now < endNs_ ? now : endNs_;
    double seconds = end > startNs_ && startNs_ != kNever ? double(end - startNs_) / 1e9 : 0;
    double rate = seconds > 0 ? double(messages_) / seconds : 0;
    // Share of one core this process used in the window: near 100 means the load
    // generator, not the server, may have set the pace.
    double cpuPct = cpuStartNs_ && now > cpuWallStartNs_
                        ? 100.0 * double(cpuNs() - cpuStartNs_) / double(now - cpuWallStartNs_)
                        : 0;
    std::printf(
        "{\"mode\":\"echo\",\"connections\":%u,\"size\":%u,\"inflight\":%u,\"text\":%s,"
        "\"raw\":%s,\"messages\":%llu,\"seconds\":%.3f,\"msgs_per_sec\":%.1f,"
        "\"mbytes_per_sec\":%.3f,\"latency_us\":",
        o_.connections, o_.size, o_.inflight, o_.text ? "true" : "false", o_.raw ? "true" : "false",
        static_cast<unsigned long long>(messages_), seconds, rate, rate * o_.size / 1e6);
    latency_.printJsonUs(stdout);
    // messages_total counts warm-up too: the server's CPU time covers the whole run.
    std::printf(
        ",\"messages_total\":%llu,\"errors\":%llu,\"open_at_end\":%u,"
        "\"client_cpu_pct\":%.1f,",
        static_cast<unsigned long long>(total_), static_cast<unsigned long long>(cl.errors()),
        cl.openCount(), cpuPct);
    cl.printErrorDetail(stdout);
    cl.printTls(stdout);
    std::printf("}\n");
  }

 private:
  static constexpr int kMaxIov = 64;
  static constexpr uint64_t kNever = ~uint64_t(0);
  struct Slot {
    uint32_t head = 0;   // oldest send time in the ring
    uint32_t count = 0;  // messages in flight
    uint32_t owed = 0;   // messages earned by replies, not yet sent
    uint64_t rawBytes = 0;
  };

  const Options& o_;
  FramePool pool_;
  std::vector<Slot> slots_;
  std::vector<uint64_t> sentNs_;  // connections x inflight send times, one ring each
  Histogram latency_;
  uint64_t messages_ = 0;
  uint64_t total_ = 0;
  uint64_t startNs_ = kNever;
  uint64_t endNs_ = kNever;
  uint64_t cpuStartNs_ = 0;
  uint64_t cpuWallStartNs_ = 0;
};

template <class Transport>
int runWith(const Options& o) {
  Xoshiro256 rng;
  auto mode = std::make_unique<EchoMode>(o, rng);
  Client<EchoMode, Transport> client(o, *mode);
  if (!client.run()) return 1;
  mode->report(client, nowNs());
  return 0;
}

}  // namespace

int runEcho(const Options& o) {
  return o.tls ? runWith<TlsTransport>(o) : runWith<PlainTransport>(o);
}

}  // namespace loadgen
