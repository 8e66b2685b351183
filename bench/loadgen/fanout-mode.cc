// fanout: N subscriber connections on one broadcast channel and one publisher connection.
//
// Every connection but the publisher sends "sub" once open and counts as subscribed when
// the server's answer (any one message) arrives. Publishing starts when every subscriber
// is subscribed or failed (at the latest --timeout seconds after the last connect). Each
// delivery carries its sequence number and send time (fanout-payload.h): latency is
// arrival minus send time; a sequence number that skips counts the skipped ones as drops.
//
// How fast to publish:
//  * flat out (no --rate): at most --window publishes are in flight, a publish counting
//    as in flight until every live subscriber has it. Precisely: deliveries outstanding
//    (publishes x live subscribers - what they received or skipped) stay at most window x
//    live subscribers; a lost subscriber stops counting. So the server never has to queue
//    without bound, and each subscriber socket holds up to `window` frames per read;
//  * --rate R: a publish every 1/R s, whatever is in flight (a publish whose turn comes
//    while more than 1024 x live deliveries are outstanding is skipped and counted).
// --publisher client: the publisher connection sends each message; --publisher server:
// the server publishes by itself and the publisher connection only sends "go <n> <size>"
// credits (flat out, n = the room the window has) or "rate <R> <size>" once.
//
// Threads (--threads T): subscribers are spread over T threads, each its own event loop
// (Client) and counters; thread 0 also holds the publisher. Each thread publishes its
// live-subscriber count and received total in atomics; a blocked publisher is woken
// through an eventfd. Only thread 0 decides when to publish.
//
// The measured window is [warm-up end, + --duration) by arrival time. Thread 0 prints
// {"event":"window","phase":"start"|"end"} as it opens and closes, so the orchestrator can
// read the server's CPU time over exactly that window.
#include <sys/eventfd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client.h"
#include "fanout-payload.h"
#include "frame-pool.h"
#include "histogram.h"
#include "modes.h"

namespace loadgen {
namespace {

using fanout::cborCall;
using fanout::getLe64;
using fanout::putLe64;

constexpr uint64_t kNever = ~uint64_t(0);
constexpr uint64_t kRateBacklog = 1024;  // --rate: publishes outstanding before skipping
constexpr uint64_t kSetupTickNs = 50'000'000;

// What the threads share. Each thread writes only its own ThreadState.
struct Shared {
  struct alignas(64) ThreadState {
    std::atomic<uint64_t> received{0};  // sum of last sequence numbers, live subscribers
    std::atomic<uint32_t> live{0};      // subscribed and still open
    std::atomic<bool> ready{false};     // each subscriber subscribed or failed
    int wakeFd = -1;
  };

  Shared(const Options& opts, uint32_t n) : o(opts), threads(n), state(new ThreadState[n]) {
    for (uint32_t t = 0; t < n; ++t) state[t].wakeFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  }
  ~Shared() {
    for (uint32_t t = 0; t < threads; ++t) {
      if (state[t].wakeFd >= 0) ::close(state[t].wakeFd);
    }
  }
  void wake(uint32_t t) const {
    uint64_t one = 1;
    if (::write(state[t].wakeFd, &one, sizeof one) < 0) {
      // EAGAIN: the counter is full, so the thread is due to wake anyway.
    }
  }

  const Options& o;
  const uint32_t threads;
  std::unique_ptr<ThreadState[]> state;
  std::atomic<uint64_t> published{0};  // publishes sent (or credited to the server)
  std::atomic<uint64_t> startNs{kNever};
  std::atomic<uint64_t> endNs{kNever};
  std::atomic<bool> publisherWaiting{false};
};

// The mode of one thread. Connection 0 of thread 0 is the publisher.
class FanoutMode {
 public:
  static constexpr bool kNoDelay = true;
  static constexpr bool kWatchStdin = false;

  FanoutMode(Shared& sh, uint32_t thread, uint32_t connections)
      : sh_(sh), o_(sh.o), thread_(thread), subs_(connections) {
    subscribers_ = connections - (isPublisherThread() ? 1 : 0);
  }

  bool raw() const { return o_.raw; }
  int wakeFd() const { return sh_.state[thread_].wakeFd; }

  void onOpen(auto& cl, Conn& c, uint64_t) {
    if (isPublisher(c)) {
      if (o_.raw && o_.publisher == Publisher::kClient) sendText(cl, c, "pub\n");
      return;
    }
    subs_[c.index].opened = true;
    if (o_.lappsProtocol) {
      cmd_.clear();
      cborCall(cmd_, "sub", false, 0, 0, 0, 0);
      sendFrame(cl, c, 2, cmd_.data(), cmd_.size());
    } else {
      sendText(cl, c, o_.raw ? "sub\n" : "sub");
    }
  }

  void onData(Conn& c, const uint8_t* p, size_t n) {
    Sub& s = subs_[c.index];
    size_t room = sizeof s.head - s.headLen;
    size_t take = n < room ? n : room;
    std::memcpy(s.head + s.headLen, p, take);
    s.headLen = uint8_t(s.headLen + take);
  }

  void onMessage(auto&, Conn& c, uint64_t, uint64_t now) {
    Sub& s = subs_[c.index];
    uint8_t headLen = s.headLen;
    s.headLen = 0;
    if (isPublisher(c)) return;  // nothing is expected there; not counted
    if (!s.acked) {
      s.acked = true;
      s.last = sh_.published.load(std::memory_order_relaxed);
      received_ += s.last;
      ++live_;
      ++acked_;
      publishCounts();
      checkReady();
      return;
    }
    uint64_t seq = 0, sentNs = 0;
    bool ok = o_.lappsProtocol ? fanout::readCborDelivery(s.head, s.head + headLen, &seq, &sentNs)
                               : headLen >= 16;
    if (ok && !o_.lappsProtocol) {
      seq = getLe64(s.head);
      sentNs = getLe64(s.head + 8);
    }
    if (!ok) {
      ++bad_;
      return;
    }
    if (seq <= s.last) {
      ++reordered_;
      return;
    }
    drops_ += seq - s.last - 1;
    received_ += seq - s.last;
    s.last = seq;
    ++total_;
    if (now >= windowStart_ && now < windowEnd_) {
      ++deliveries_;
      latency_.record(now > sentNs ? now - sentNs : 0);
    }
    publishCounts();
  }

  // --raw: the raw peer forwards the publisher's bytes, which are server frames already,
  // so the Client parses them as it does a WebSocket server's (kRawFrames): never called.
  static constexpr bool kRawFrames = true;
  void onBytes(auto&, Conn&, size_t, uint64_t) {}

  void afterRead(auto& cl, Conn&, uint64_t now) {
    if (isPublisherThread() && started_) publish(cl, now);
  }

  void onLost(Conn& c) {
    if (isPublisher(c)) {
      publisherLost_ = true;
      return;
    }
    Sub& s = subs_[c.index];
    ++lost_;
    if (s.acked) {
      --live_;
      received_ -= s.last;
      publishCounts();
    } else {
      ++failed_;
      checkReady();
    }
  }

  void onAllAttempted(auto&, uint64_t now) {
    attempted_ = true;
    attemptedNs_ = now;
    for (uint32_t i = isPublisherThread() ? 1 : 0; i < subs_.size(); ++i) {
      if (!subs_[i].opened) ++failed_;
    }
    checkReady();
  }

  void onTick(auto& cl, uint64_t now) {
    lastNow_ = now;
    if (!isPublisherThread()) {
      windowStart_ = sh_.startNs.load(std::memory_order_acquire);
      windowEnd_ = sh_.endNs.load(std::memory_order_acquire);
      return;
    }
    if (!started_) {
      if (!cl.openCount() && attempted_) return;  // nothing will ever start: done() ends it
      // now may predate attemptedNs_ (it is read before the loop turn's events).
      if (!allReady() && !(attempted_ && now > attemptedNs_ + secondsToNs(o_.timeout))) return;
      start(cl, now);
    }
    if (!startPrinted_ && now >= windowStart_) {
      startPrinted_ = true;
      cpuStartNs_ = cpuNs();
      cpuWallStartNs_ = now;
      event("start");
    }
    if (now >= windowEnd_ && !endPrinted_) {
      endPrinted_ = true;
      cpuPct_ = now > cpuWallStartNs_
                    ? 100.0 * double(cpuNs() - cpuStartNs_) / double(now - cpuWallStartNs_)
                    : 0;
      event("end");
      return;
    }
    publish(cl, now);
  }

  uint64_t deadline() const {
    if (!isPublisherThread()) return windowEnd_;
    if (!started_) return lastNow_ + kSetupTickNs;
    uint64_t d = startPrinted_ ? windowEnd_ : windowStart_;
    if (o_.rate > 0 && o_.publisher == Publisher::kClient && nextPublishNs_ < d) {
      d = nextPublishNs_;
    }
    return d;
  }

  bool done(const auto& cl, uint64_t now) const {
    if (!isPublisherThread()) return now >= sh_.endNs.load(std::memory_order_relaxed);
    if (attempted_ && cl.openCount() == 0) return true;
    return publisherLost_ || (endPrinted_ && now >= windowEnd_);
  }

  // Thread 0, after its loop: lets the other threads finish too.
  void finish() {
    uint64_t now = nowNs();
    uint64_t end = sh_.endNs.load();
    if (end == kNever || end > now) sh_.endNs.store(now);
    for (uint32_t t = 1; t < sh_.threads; ++t) sh_.wake(t);
  }

  struct Totals {
    uint64_t subscribed = 0, lost = 0, deliveries = 0, total = 0, drops = 0, bad = 0, reordered = 0,
             errors = 0, publishes = 0, skipped = 0;
    Histogram latency;
  };
  void addTo(Totals& t, uint64_t errors) const {
    t.subscribed += acked_;
    t.lost += lost_;
    t.deliveries += deliveries_;
    t.total += total_;
    t.drops += drops_;
    t.bad += bad_;
    t.reordered += reordered_;
    t.errors += errors;
    t.publishes += publishesInWindow_;
    t.skipped += skipped_;
    t.latency.merge(latency_);
  }
  double cpuPct() const { return cpuPct_; }
  bool publisherLost() const { return publisherLost_; }

 private:
  struct Sub {
    uint64_t last = 0;  // sequence number last received (or skipped)
    uint8_t head[64];   // the first bytes of the message being received
    uint8_t headLen = 0;
    bool opened = false;
    bool acked = false;
  };

  bool isPublisherThread() const { return thread_ == 0; }
  bool isPublisher(const Conn& c) const { return thread_ == 0 && c.index == 0; }

  void publishCounts() {
    Shared::ThreadState& st = sh_.state[thread_];
    st.received.store(received_, std::memory_order_relaxed);
    st.live.store(live_, std::memory_order_relaxed);
    if (thread_ != 0 && sh_.publisherWaiting.load(std::memory_order_relaxed)) {
      // Wake the publisher once this thread's share is back within the window.
      uint64_t p = sh_.published.load(std::memory_order_relaxed);
      if (uint64_t(live_) * p - received_ <= uint64_t(o_.window - 1) * live_ &&
          sh_.publisherWaiting.exchange(false)) {
        sh_.wake(0);
      }
    }
  }

  void checkReady() {
    if (attempted_ && acked_ + failed_ >= subscribers_) {
      sh_.state[thread_].ready.store(true, std::memory_order_release);
      if (thread_ != 0) sh_.wake(0);
    }
  }

  bool allReady() const {
    for (uint32_t t = 0; t < sh_.threads; ++t) {
      if (!sh_.state[t].ready.load(std::memory_order_acquire)) return false;
    }
    return true;
  }

  void start(auto& cl, uint64_t now) {
    started_ = true;
    windowStart_ = now + secondsToNs(o_.warmup);
    windowEnd_ = windowStart_ + secondsToNs(o_.duration);
    sh_.startNs.store(windowStart_, std::memory_order_release);
    sh_.endNs.store(windowEnd_, std::memory_order_release);
    for (uint32_t t = 1; t < sh_.threads; ++t) sh_.wake(t);
    nextPublishNs_ = now;
    if (o_.rate > 0 && o_.publisher == Publisher::kServer) {
      command(cl, "rate", uint64_t(o_.rate), o_.size);
    }
  }

  // Outstanding deliveries and live subscribers over all threads.
  void outstanding(uint64_t published, uint64_t* out, uint64_t* live) const {
    uint64_t owed = 0, n = 0;
    for (uint32_t t = 0; t < sh_.threads; ++t) {
      uint64_t l = sh_.state[t].live.load(std::memory_order_relaxed);
      uint64_t r = sh_.state[t].received.load(std::memory_order_relaxed);
      n += l;
      if (l * published > r) owed += l * published - r;
    }
    *out = owed;
    *live = n;
  }

  void publish(auto& cl, uint64_t now) {
    if (publisherLost_ || now >= windowEnd_) return;
    Conn* pub = cl.conn(0);
    if (!pub || pub->state != ConnState::kOpen) return;
    uint64_t p = sh_.published.load(std::memory_order_relaxed);
    uint64_t owed, live;
    outstanding(p, &owed, &live);
    if (live == 0) return;
    uint64_t n = 0;
    if (o_.rate > 0) {
      if (o_.publisher == Publisher::kServer) return;  // the server keeps the pace
      uint64_t interval = uint64_t(1e9 / o_.rate);
      while (nextPublishNs_ <= now) {
        nextPublishNs_ += interval;
        if (owed + n * live > kRateBacklog * live) {
          ++skipped_;
        } else {
          ++n;
        }
      }
    } else {
      uint64_t room = uint64_t(o_.window) * live;
      n = owed < room ? (room - owed) / live : 0;
      if (n == 0) {
        if (sh_.threads > 1) sh_.publisherWaiting.store(true);
        return;
      }
    }
    if (n == 0) return;
    if (now >= windowStart_ && now < windowEnd_) publishesInWindow_ += n;
    if (o_.publisher == Publisher::kServer) {
      sh_.published.store(p + n, std::memory_order_relaxed);
      command(cl, "go", n, o_.size);
      return;
    }
    batch_.clear();
    for (uint64_t i = 1; i <= n; ++i) appendPublish(p + i, now);
    sh_.published.store(p + n, std::memory_order_relaxed);
    iovec iov{batch_.data(), batch_.size()};
    cl.send(*pub, &iov, 1);
  }

  // One publish frame into batch_: masked client frame, or (--raw) the server frame the
  // raw fan-out peer forwards as it is.
  void appendPublish(uint64_t seq, uint64_t now) {
    payload_.clear();
    if (o_.lappsProtocol) {
      cborCall(payload_, "pub", true, 3, seq, now, o_.size - 16);
    } else {
      payload_.resize(o_.size, uint8_t('x'));
      putLe64(payload_.data(), seq);
      putLe64(payload_.data() + 8, now);
    }
    appendFrame(batch_, 2, payload_.data(), payload_.size());
  }

  void appendFrame(std::vector<uint8_t>& out, uint8_t opcode, const uint8_t* p, size_t n) {
    uint8_t header[14];
    size_t h;
    if (o_.raw) {
      h = writeClientHeader(header, opcode, n, 0);
      header[1] &= 0x7F;  // a server frame: no mask bit, no key
      h -= 4;
      out.insert(out.end(), header, header + h);
      out.insert(out.end(), p, p + n);
      return;
    }
    uint32_t mask = uint32_t(rng_.next() >> 32);
    h = writeClientHeader(header, opcode, n, mask);
    out.insert(out.end(), header, header + h);
    size_t at = out.size();
    out.insert(out.end(), p, p + n);
    const uint8_t* key = header + h - 4;
    for (size_t i = 0; i < n; ++i) out[at + i] ^= key[i & 3];
  }

  void sendFrame(auto& cl, Conn& c, uint8_t opcode, const uint8_t* p, size_t n) {
    frame_.clear();
    appendFrame(frame_, opcode, p, n);
    iovec iov{frame_.data(), frame_.size()};
    cl.send(c, &iov, 1);
  }

  void sendText(auto& cl, Conn& c, std::string_view s) {
    auto* p = reinterpret_cast<const uint8_t*>(s.data());
    if (o_.raw) {
      iovec iov{const_cast<uint8_t*>(p), s.size()};
      cl.send(c, &iov, 1);
      return;
    }
    sendFrame(cl, c, 1, p, s.size());
  }

  // "go <n> <size>" / "rate <r> <size>" to the server's publisher.
  void command(auto& cl, const char* name, uint64_t n, uint64_t size) {
    Conn* pub = cl.conn(0);
    if (!pub) return;
    if (o_.lappsProtocol) {
      cmd_.clear();
      cborCall(cmd_, name, true, 2, n, size, 0);
      sendFrame(cl, *pub, 2, cmd_.data(), cmd_.size());
      return;
    }
    char line[64];
    int len = std::snprintf(line, sizeof line, "%s %" PRIu64 " %" PRIu64 "%s", name, n, size,
                            o_.raw ? "\n" : "");
    sendText(cl, *pub, std::string_view(line, size_t(len)));
  }

  void event(const char* phase) const {
    std::printf("{\"event\":\"window\",\"phase\":\"%s\"}\n", phase);
    std::fflush(stdout);
  }

  Shared& sh_;
  const Options& o_;
  const uint32_t thread_;
  std::vector<Sub> subs_;
  uint32_t subscribers_ = 0;
  Xoshiro256 rng_;
  std::vector<uint8_t> batch_, payload_, frame_, cmd_;
  Histogram latency_;
  bool attempted_ = false;
  bool started_ = false;
  bool startPrinted_ = false;
  bool endPrinted_ = false;
  bool publisherLost_ = false;
  uint32_t acked_ = 0, failed_ = 0, live_ = 0;
  uint64_t received_ = 0;
  uint64_t lost_ = 0, deliveries_ = 0, total_ = 0, drops_ = 0, bad_ = 0, reordered_ = 0;
  uint64_t publishesInWindow_ = 0, skipped_ = 0;
  uint64_t windowStart_ = kNever, windowEnd_ = kNever;
  uint64_t attemptedNs_ = 0, lastNow_ = 0, nextPublishNs_ = 0;
  uint64_t cpuStartNs_ = 0, cpuWallStartNs_ = 0;
  double cpuPct_ = 0;
};

// One thread's event loop over its share of the connections.
struct Worker {
  Options o;  // connections: this thread's share
  std::unique_ptr<FanoutMode> mode;
  uint64_t errors = 0;
  uint64_t errorKinds[size_t(ErrorKind::kCount)] = {};
  bool ok = true;
};

void runWorker(Shared& sh, uint32_t t, Worker& w) {
  Client<FanoutMode> client(w.o, *w.mode);
  w.ok = client.run();
  if (t == 0) w.mode->finish();
  w.errors = client.errors();
  for (size_t k = 0; k < size_t(ErrorKind::kCount); ++k) w.errorKinds[k] = client.errorCount(k);
  (void)sh;
}

}  // namespace

int runFanout(const Options& o) {
  uint32_t threads = o.threads;
  Shared sh(o, threads);
  for (uint32_t t = 0; t < threads; ++t) {
    if (sh.state[t].wakeFd < 0) {
      std::perror("lapps-loadgen: eventfd");
      return 1;
    }
  }
  std::vector<Worker> workers(threads);
  for (uint32_t t = 0; t < threads; ++t) {
    Worker& w = workers[t];
    w.o = o;
    // Subscribers spread evenly; thread 0 has the publisher on top.
    w.o.connections = o.connections / threads + (t < o.connections % threads ? 1 : 0);
    if (t == 0) ++w.o.connections;
    w.mode = std::make_unique<FanoutMode>(sh, t, w.o.connections);
  }
  // Signals are blocked before any thread starts, so each thread's signalfd sees them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::vector<std::thread> running;
  for (uint32_t t = 1; t < threads; ++t) {
    running.emplace_back(runWorker, std::ref(sh), t, std::ref(workers[t]));
  }
  runWorker(sh, 0, workers[0]);
  for (auto& th : running) th.join();

  FanoutMode::Totals tot;
  uint64_t kinds[size_t(ErrorKind::kCount)] = {};
  bool ok = true;
  for (const Worker& w : workers) {
    w.mode->addTo(tot, w.errors);
    for (size_t k = 0; k < size_t(ErrorKind::kCount); ++k) kinds[k] += w.errorKinds[k];
    ok = ok && w.ok;
  }
  if (!ok) return 1;
  uint64_t start = sh.startNs.load(), end = sh.endNs.load();
  double seconds = start != kNever && end > start ? double(end - start) / 1e9 : 0;
  auto perSec = [&](uint64_t n) { return seconds > 0 ? double(n) / seconds : 0; };
  std::printf(
      "{\"mode\":\"fanout\",\"subscribers\":%u,\"threads\":%u,\"size\":%u,"
      "\"publisher\":\"%s\",\"protocol\":\"%s\",\"rate\":%.1f,\"window\":%u,"
      "\"subscribed\":%" PRIu64 ",\"seconds\":%.3f,\"publishes\":%" PRIu64
      ",\"publishes_per_sec\":%.1f,\"deliveries\":%" PRIu64
      ",\"deliveries_per_sec\":%.1f,\"msgs_per_sec\":%.1f,\"latency_us\":",
      o.connections, threads, o.size, o.publisher == Publisher::kServer ? "server" : "client",
      o.raw             ? "raw"
      : o.lappsProtocol ? "lapps"
                        : "ws",
      o.rate, o.window, tot.subscribed, seconds, tot.publishes, perSec(tot.publishes),
      tot.deliveries, perSec(tot.deliveries), perSec(tot.deliveries));
  tot.latency.printJsonUs(stdout);
  // deliveries_total counts warm-up too; drops: sequence numbers a subscriber never got.
  std::printf(
      ",\"deliveries_total\":%" PRIu64 ",\"drops\":%" PRIu64 ",\"subscribers_lost\":%" PRIu64
      ",\"bad_payloads\":%" PRIu64 ",\"reordered\":%" PRIu64 ",\"publishes_skipped\":%" PRIu64
      ",\"publisher_lost\":%s,\"errors\":%" PRIu64 ",\"client_cpu_pct\":%.1f,",
      tot.total, tot.drops, tot.lost, tot.bad, tot.reordered, tot.skipped,
      workers[0].mode->publisherLost() ? "true" : "false", tot.errors, workers[0].mode->cpuPct());
  std::fputs("\"error_detail\":{", stdout);
  for (size_t k = 0; k < size_t(ErrorKind::kCount); ++k) {
    std::printf("%s\"%s\":%" PRIu64, k ? "," : "", kErrorNames[k], kinds[k]);
  }
  std::printf("}}\n");
  return 0;
}

}  // namespace loadgen
