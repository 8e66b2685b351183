// An IO worker: one thread running one loop (io/loop.h), its own SO_REUSEPORT listening
// sockets, a timer heap of connection deadlines, an eventfd inbox, and every connection it
// accepted (or was handed).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/access-log.h"
#include "core/connection.h"
#include "core/event-channel.h"
#include "core/handle.h"
#include "core/policy.h"
#include "core/repeated-log.h"
#include "core/service-host.h"
#include "core/service-instance.h"
#include "core/shared-buffer.h"
#include "core/slab.h"
#include "core/slot-directory.h"
#include "core/stats.h"
#include "core/subscriptions.h"
#include "io/inbox.h"
#include "io/loop.h"
#include "io/lua-thread.h"
#include "protocol/opcode.h"
#include "security/tls-records.h"

namespace lapps {

class Server;
class ServiceInstance;

// What other threads may ask of a worker.
struct InboxMessage {
  enum class Kind : uint8_t { Adopt, Send, Close, Stop, Broadcast, Subscribe, Unsubscribe, Task };
  Kind kind = Kind::Stop;
  int fd = -1;            // Adopt: the socket handed over
  int32_t instance = -1;  // Adopt: instance index chosen for it
  PeerAddress peer{};     // Adopt
  bool counted = false;   // Adopt: admitted by the ConnLimiter
  SSL* tls = nullptr;     // Adopt: the TLS session, owned by the message until adopted
  std::shared_ptr<const TlsServerContext> tlsContext{};  // Adopt
  uint64_t handle = 0;                                   // Send / Close
  uint32_t service = 0;  // Send / Close / (Un)subscribe: the calling service (checked again)
  Opcode opcode = Opcode::Text;
  uint16_t code = 0;              // Close
  std::string bytes{};            // Adopt: bytes read so far; Send: payload; Close: reason
  uint64_t channel = 0;           // Broadcast / Subscribe / Unsubscribe
  SharedBuffer* frame = nullptr;  // Broadcast: one reference, owned by the message
  std::function<void()> task{};   // Task: run on the worker's thread
  uint64_t deadlineMs = 0;        // Stop: when the drain ends (monotonic ms; 0 = at once)
  uint64_t acceptedMs = 0;        // Adopt: when it was accepted (the access log's duration)
};

// The worker is the one ServiceHost: the service API below is what instances call through
// it (core/service-host.h), defined in worker.cc without virtual dispatch. Its loop (io/) is
// the Host its instances run on.
class Worker final : public ServiceHost, public Loop {
 public:
  Worker(Server& server, uint32_t index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  uint32_t index() const { return index_; }
  Server& server() { return server_; }
  void addListener(int fd) { listeners_.push_back(fd); }
  // The ACLs, Origin policies and TLS contexts to apply from now on (at start, and on a
  // reload through a task on this worker's thread).
  void setPolicy(std::shared_ptr<const Policy> policy) { policy_ = std::move(policy); }
  void attach(ServiceInstance* instance) { instances_.push_back(instance); }

  void start();
  void join();

  Inbox<InboxMessage>& inbox() { return inbox_; }
  // The errno if its loop or its inbox could not be created (no descriptor left), else 0.
  int createError() const {
    return Loop::createError() ? Loop::createError() : inbox_.createError();
  }

  // Any thread: the service of each open connection of this worker, by slot.
  const SlotDirectory& directory() const { return directory_; }
  // Any thread: what is known of each open connection of this worker (ws:info).
  const ConnInfoTable& infos() const { return infos_; }

  // Host (the rest is the Loop's): tasks for the instances on this worker, through the inbox.
  void post(std::function<void()> fn) override;

  void log(LogLevel level, std::string message);
  // log() for a line that may repeat many times a second: at most one per interval of `r`,
  // then one with the count of the repeats.
  void logRepeated(RepeatedLog& r, LogLevel level, std::string message);

 private:
  // Connections and their transports use what connections share (connection.h).
  friend class Connection;
  friend struct FrameSink;
  friend struct PlainTransport;
  friend struct TlsTransport;
  friend struct RecordTransport;

  void run();
  void onListener(size_t index);
  // Closes a socket refused at accept, after a canned HTTP response on plain listeners.
  void refuseAtAccept(int fd, int status, std::string_view body, bool tls);
  void adopt(InboxMessage& m);
  void onInbox();
  // Drains the inbox once and handles what it held; true if that included a broadcast.
  bool handleInbox(std::vector<InboxMessage>& batch);
  static constexpr uint64_t kGatherGapNs = 5'000;
  static constexpr uint64_t kGatherMaxNs = 200'000;
  void onConnectionEvent(uint64_t handle, uint32_t events);
  // A complete request: refused, handed over to the worker that runs its instance, or
  // opened here.
  void completeHandshake(Connection& c);
  // The instance has an onConnect: it is shown the request and decides (now or later).
  void askService(Connection& c, const ServiceRuntime* svc, int32_t inst);
  // onConnect's answer: the 101 or the refusal.
  void finishConnect(Connection& c, ConnectVerdict&& verdict);
  // The front door (core/front-door.cc). A proxy_protocol listener's connection is readable
  // before its PROXY header is complete: take the header (and only it), then the handshake.
  void readProxyHeader(Connection& c);
  // Malformed, missing or late PROXY header: closed without an answer, and counted.
  void refuseProxyHeader(Connection& c, const char* why);
  // Before routing: the client behind a trusted proxy (X-Forwarded-For, Forwarded) becomes
  // its peer (hs->peer), and a connection counted only in the server-wide total at accept is
  // counted under its client's address. False: refused (answered).
  bool admitClient(Connection& c);
  // The access log's line for a handshake's outcome (101, or the refusal's status and reason).
  void logHandshake(Connection& c, int status, std::string_view reason);
  void endAccessWindow();
  // Hands the messages gathered from this connection's bytes so far to its service.
  void dispatchBatch(Connection& c);
  void flushDirty();
  void kill(Connection& c, const char* why);
  void reapDead();
  void teardown(Connection& c);
  void onTimers();
  void armTimer(Connection& c, uint64_t deadline);
  void scheduleActivityTimer(Connection& c);
  // Graceful stop (docs/config.md, "Stopping"): listeners close, what each connection
  // had sent by now is read and handled, then reading stops; a connection gets 1001 once
  // its handlers are done, or at `deadlineMs` whatever they do. Called again with an
  // earlier deadline (a stop that must end now), it cuts the drain.
  void beginStop(uint64_t deadlineMs);
  // While stopping: closes c with 1001 if no handler of it is in progress.
  void closeIfDrained(Connection& c);
  // The drain deadline: every connection still open is closed with 1001.
  void endDrain();
  // Memory housekeeping (docs/memory.md): a tick armed by activity; when it finds the worker
  // quiet after a busy spell, releaseMemory gives back what the spell left behind.
  void memoryTick();
  void releaseMemory(uint64_t spellBytes);

  Connection* newConnection(int fd, const PeerAddress& peer);
  void countParseError(ParseError e);
  Connection* lookup(uint64_t handle) {
    Handle h = Handle::unpack(handle);
    if (h.worker != index_ || h.slot >= slots_.size()) return nullptr;
    Connection* c = slots_[h.slot];
    if (!c || c->generation != h.generation) return nullptr;
    return c;
  }
  // Loops over thousands of connections (a broadcast's subscribers, a turn's flushes) ask
  // for a connection's record a few iterations before they need it.
  void prefetch(uint64_t handle) const {
    Handle h = Handle::unpack(handle);
    if (h.slot < slots_.size()) __builtin_prefetch(slots_[h.slot]);
  }
  bool haveSlot() const { return !freeSlots_.empty() || slots_.size() <= Handle::kSlotMask; }
  uint64_t handleOf(const Connection& c) const {
    return Handle{index_, c.slot, c.generation}.pack();
  }
  // Fairness: per loop turn a connection gets one slice: at most its instance's
  // sliceMessages() messages, which Connection::serveBacklog adapts so that a slice takes about
  // kSliceNs, and, as a backstop for handlers slower than that count was learned on, no new message
  // once the slice has lasted longer (sliceGoesOn). What it sent beyond waits in its
  // backlog, unparsed, with reading paused; the loop serves one slice of each backlog per
  // turn, after the other connections' events, and does not block in epoll_wait while any
  // is left.
  static constexpr uint64_t kSliceNs = 2'000'000;
  // A turn's flush that writes to many connections (a broadcast) can cost more than a
  // slice: then the slice grows towards the flush's length (at most kMaxSliceNs), so that
  // the publishes of one read are handled in one turn and each subscriber's write carries
  // all of them, instead of one write per subscriber per publish. The turn grows by at most
  // what its flush costs anyway. Flushes of fewer than kTimedFlush connections are not timed
  // (they cost no clock reads) and let the slice shrink back.
  static constexpr uint64_t kMaxSliceNs = 20'000'000;
  static constexpr size_t kTimedFlush = 256;
  void adaptSlice(uint64_t flushNs) {
    const uint64_t target = std::clamp(flushNs, kSliceNs, kMaxSliceNs);
    sliceNs_ = (sliceNs_ * 3 + target) / 4;
    sliceLimitNs_ = sliceNs_ + clockResNs_;
  }
  uint64_t sliceNs_ = kSliceNs;
  uint64_t clockResNs_ = 0;  // of the coarse clock sliceTimeLeft reads
  static constexpr uint32_t kMaxSliceMessages = 1u << 16;
  void startSlice(uint32_t messages) {
    sliceLeft_ = messages;
    sliceCalls_ = 0;
  }
  void scheduleBacklog(Connection& c);
  void serveBacklogs();
  // Backlog storage is lent, not allocated: a busy turn that leaves bytes behind costs no
  // malloc and no free once the worker has seen as many backlogs at a time. `s` (empty)
  // gets a kept string's storage, if one is kept; recycle() takes the storage back
  // (kept up to kSpareStrings, each at most kSpareStringBytes) and leaves `s` empty.
  // A new one has room for kSpareStringMin bytes, so that it rarely needs to grow.
  static constexpr size_t kSpareStrings = 16;
  static constexpr size_t kSpareStringMin = 64 * 1024;
  static constexpr size_t kSpareStringBytes = 256 * 1024;
  void lendString(std::string& s, size_t need) {
    if (!spareStrings_.empty() && spareStrings_.back().capacity() >= need) {
      s.swap(spareStrings_.back());
      spareStrings_.pop_back();
    } else {
      s.reserve(std::max(need, kSpareStringMin));
    }
  }
  void recycle(std::string& s) {
    if (s.capacity() <= kSpareStringBytes && s.capacity() > std::string().capacity() &&
        spareStrings_.size() < kSpareStrings) {
      s.clear();
      spareStrings_.push_back(std::move(s));
    }
    std::string().swap(s);
  }
  // The service API (ServiceHost's calls land here, see worker.cc). send and reaches are
  // forced inline into their ServiceHost calls: no extra call on the send path.
  friend class ServiceHost;
  [[gnu::always_inline]] inline SendStatus send(uint32_t service, uint64_t handle, Opcode op,
                                                const uint8_t* data, size_t len);
  SendStatus close(uint32_t service, uint64_t handle, uint16_t code, std::string_view reason);
  SendStatus subscribe(uint32_t service, uint64_t channel, uint64_t handle);
  SendStatus unsubscribe(uint32_t service, uint64_t channel, uint64_t handle);
  // subscribe (kind Subscribe) or unsubscribe (Unsubscribe): one check of the channel and
  // the handle, forwarded to the connection's worker if it is another.
  SendStatus membership(InboxMessage::Kind kind, uint32_t service, uint64_t channel,
                        uint64_t handle);
  [[gnu::always_inline]] inline bool reaches(uint32_t service, uint64_t handle);
  SendStatus broadcast(uint64_t channel, SharedBuffer* frame);
  void fail(uint64_t handle);
  void hold(uint64_t handle);
  void release(uint64_t handle);
  void closeConnectionsOf(const ServiceInstance* instance, uint16_t code, std::string_view reason);
  bool answerConnect(uint32_t service, uint64_t handle, ConnectVerdict&& verdict);
  // The handshake of `handle` waits for `service`'s onConnect.
  Connection* waitingHandshake(uint32_t service, uint64_t handle);
  std::shared_ptr<const ConnInfo> info(uint32_t service, uint64_t handle);
  // A request about a connection of another worker goes to that worker's inbox.
  SendStatus forward(Handle h, InboxMessage m);
  // A broadcast is queued to this worker's subscribers when the turn's writes begin (or
  // before anything else is sent, closed or subscribed, so that order is kept): the frames
  // of consecutive publishes to one channel are joined into one buffer on the way, so each
  // subscriber gets one segment and one iovec per turn, not one per publish.
  void broadcastLocal(uint64_t channel, SharedBuffer* frame);
  void deliverBroadcasts() {
    if (!pendingBroadcasts_.empty()) [[unlikely]]
      deliverBroadcastsNow();
  }
  void deliverBroadcastsNow();
  uint64_t deliverNs_ = 0;
  // Consecutive publishes to one channel are joined into one buffer up to this size.
  static constexpr size_t kMaxJoined =
      256 * 1024;  // this turn's timed deliveries (written at once), for adaptSlice
  struct PendingBroadcast {
    uint64_t channel;
    SharedBuffer* frames;  // one reference held here
    uint32_t count;        // frames joined in it
    bool joined;           // a buffer of this worker's, still written to by broadcastLocal
  };
  std::vector<PendingBroadcast> pendingBroadcasts_;
  bool delivering_ = false;

  Server& server_;
  uint32_t index_;
  std::string name_;
  // Runs Lua services: a C stack sized for Lua (io/lua-thread.h).
  LuaThread thread_;
  Inbox<InboxMessage> inbox_;
  std::vector<int> listeners_;
  std::vector<ServiceInstance*> instances_;

  std::vector<Connection*> slots_;  // slot -> connection (null when free)
  Slab<Connection> records_;        // where slots_ point
  std::vector<uint32_t> generations_;
  SlotDirectory directory_;
  ConnInfoTable infos_;
  std::vector<uint32_t> freeSlots_;
  // Handles, not pointers: a connection may die and be freed while listed.
  std::vector<uint64_t> dirtyList_;
  std::vector<uint64_t> deadList_;
  size_t liveConnections_ = 0;

  // 16 bytes: the heap holds about one per connection.
  struct TimerEntry {
    static constexpr uint64_t kOutbound = uint64_t(1) << 63;  // above every handle
    uint64_t deadline;
    uint64_t tagged;  // the handle, | kOutbound for the slow-consumer watch
    uint64_t handle() const { return tagged & ~kOutbound; }
    // The slow-consumer watch (Connection::outboundDeadlineMs), not the connection's deadline.
    bool outbound() const { return (tagged & kOutbound) != 0; }
    bool operator>(const TimerEntry& o) const { return deadline > o.deadline; }
  };
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<TimerEntry>> timers_;

  bool stopping_ = false;
  bool drainEnded_ = false;  // endDrain ran: handlers in progress were cut
  uint64_t stopDeadline_ = 0;
  bool listenersPaused_ = false;
  uint64_t resumeListenersAt_ = 0;
  RepeatedLog acceptErrors_;      // accept() failing (descriptor limit, out of memory)
  RepeatedLog tlsSessionErrors_;  // no TLS session for an accepted socket
  std::vector<uint8_t> readBuf_;
  BufferPool pool_;                        // outbound chunks, recycled
  Subscriptions subscriptions_;            // this worker's connections on broadcast channels
  std::vector<InboundMessage> batch_;      // complete messages of the connection being read
  std::vector<uint64_t> backlog_;          // connections with a backlog to serve (handles)
  std::vector<uint64_t> serving_;          // backlog_ as it was when this turn served it
  std::vector<uint64_t> flushing_;         // dirtyList_ as it was when this turn flushed it
  std::vector<std::string> spareStrings_;  // see lendString
  // The connection whose batch is being dispatched: most sends go to it, and send() skips
  // their lookup. Only a shortcut for send(); nothing else reads it.
  Connection* dispatching_ = nullptr;
  uint64_t dispatchingHandle_ = 0;
  WorkerStats* stats_ = nullptr;
  std::shared_ptr<const Policy> policy_;
  const bool accessLog_;                 // log.access: Connection tests it before logHandshake
  AccessLimiter accessLimiter_;          // refusals logged per address (core/access-log.h)
  std::vector<uint64_t> readAgain_;      // TLS connections with decrypted bytes left after a pause
  std::unique_ptr<uint8_t[]> tlsStage_;  // small frames gathered into one TLS record
  // The frame parser's state of a connection at rest (Connection::parser is null), and
  // states given back by connections that came to rest, for the next that stops mid-frame.
  FrameParserState restParser_{};
  static constexpr size_t kSpareParsers = 64;
  std::vector<std::unique_ptr<FrameParserState>> spareParsers_;
  std::unique_ptr<TlsRecordCrypto> tlsCrypto_;  // the AEAD of connections on our record layer
  bool memoryTickArmed_ = false;
  uint64_t bytesAtTick_ = 0;  // BytesIn + BytesOut at the last memory tick
  uint64_t spellBytes_ = 0;   // bytes moved since the worker was last quiet
  uint64_t spellPeak_ = 0;    // most bytes moved in one tick of that spell
  // Handshake buffers freed since then: a flood of handshakes leaves that much heap free,
  // resident until a trim (releaseMemory tells the trimmer).
  uint64_t handshakeBytesFreed_ = 0;
};

}  // namespace lapps
