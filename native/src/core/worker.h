// An IO worker: one thread, one epoll instance, its own SO_REUSEPORT listening sockets,
// a timer heap, an eventfd inbox, and every connection it accepted (or was handed).
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/connection.h"
#include "core/event-channel.h"
#include "core/handle.h"
#include "core/inbox.h"
#include "core/policy.h"
#include "core/service-instance.h"
#include "core/shared-buffer.h"
#include "core/stats.h"
#include "protocol/opcode.h"
#include "runtime/host.h"
#include "runtime/lua-thread.h"
#include "runtime/timer-queue.h"

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
  Opcode opcode = Opcode::Text;
  uint16_t code = 0;              // Close
  std::string bytes{};            // Adopt: bytes read so far; Send: payload; Close: reason
  uint64_t channel = 0;           // Broadcast / Subscribe / Unsubscribe
  SharedBuffer* frame = nullptr;  // Broadcast: one reference, owned by the message
  std::function<void()> task{};   // Task: run on the worker's thread
};

enum class SendStatus : uint8_t { Ok, NoConnection, Closing, SlowConsumer, NoChannel };

class Worker final : public Host {
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

  // Service API, called on this worker's thread (from Lua or C handlers). A handle of
  // another worker is forwarded through that worker's inbox.
  SendStatus send(uint64_t handle, Opcode op, const uint8_t* data, size_t len);
  SendStatus close(uint64_t handle, uint16_t code, std::string_view reason);
  // Broadcast channels. `frame` is a complete encoded frame; the caller keeps its own
  // reference. A subscription ends with its connection.
  SendStatus subscribe(uint64_t channel, uint64_t handle);
  SendStatus unsubscribe(uint64_t channel, uint64_t handle);
  SendStatus broadcast(uint64_t channel, SharedBuffer* frame);

  // For the Lua dispatcher: is the connection whose messages are being delivered open
  // (and not waiting for a suspended handler)?
  bool currentOpen() const {
    return current_ && current_->state == ConnState::Open && !current_->held;
  }
  uint64_t currentHandle() const { return currentHandle_; }
  // Closes that connection with 1011: its handler failed.
  void failCurrent();
  // The handler of the current connection suspended (a coroutine waits for a timer, a
  // queue or a socket): the connection's later messages wait, in order, and reading from
  // it pauses until release(handle).
  void holdCurrent();
  // The suspended handler of `handle` finished: deliver what waited, resume reading.
  void release(uint64_t handle);
  // Runs fn with `handle` as the current connection (a resumed handler), as a batch does.
  template <class F>
  void asCurrent(uint64_t handle, F&& fn) {
    Connection* prev = current_;
    uint64_t prevHandle = currentHandle_;
    current_ = lookup(handle);
    currentHandle_ = current_ ? handle : 0;
    fn();
    current_ = prev;
    currentHandle_ = prevHandle;
  }
  // Closes every open connection of `instance` with `code` (its Lua state was replaced).
  void closeConnectionsOf(const ServiceInstance* instance, uint16_t code, std::string_view reason);

  // Host: timers, watched sockets and tasks for the instances on this worker.
  uint64_t nowMs() const override { return nowMs_; }
  uint64_t addTimer(uint64_t delayMs, std::function<void()> fn) override;
  bool cancelTimer(uint64_t id) override { return hostTimers_.cancel(id); }
  void post(std::function<void()> fn) override;
  void watch(int fd, uint32_t events, IoHandler* handler) override;
  void unwatch(int fd) override;

  EventChannel& events();
  void log(LogLevel level, std::string message);

 private:
  friend struct FrameSink;

  void run();
  void onListener(size_t index);
  // Closes a socket refused at accept, after a canned HTTP response on plain listeners.
  void refuseAtAccept(int fd, int status, std::string_view body, bool tls);
  void onTlsReadable(Connection& c);
  // Where the next read goes: the handshake buffer (never past its capacity) or readBuf_.
  void readTarget(Connection& c, char*& buf, size_t& cap);
  // Bytes read (or decrypted) from a connection: to the handshake parser or the frames.
  void onBytesRead(Connection& c, char* buf, size_t n);
  void flushTls(Connection& c);
  void adopt(InboxMessage& m);
  void onInbox();
  void onConnectionEvent(uint64_t handle, uint32_t events);
  void onReadable(Connection& c);
  void onHandshakeBytes(Connection& c, const char* data, size_t len);
  void completeHandshake(Connection& c);
  void rejectHandshake(Connection& c, int status, std::string_view body);
  void onFrameBytes(Connection& c, uint8_t* data, size_t len);
  // Hands the messages gathered from this connection's bytes so far to its service.
  void dispatchBatch(Connection& c);
  void beginClose(Connection& c, uint16_t code, std::string_view reason);
  // Sends FIN once the queue is flushed, then reads to EOF (bounded by the close timeout).
  void finishAndDrain(Connection& c);
  void queueFrame(Connection& c, Opcode op, const uint8_t* data, size_t len);
  // Large message, empty queue: write it straight from the caller's bytes, queue only
  // what the socket did not take (saves copying the payload into the queue).
  void writeThrough(Connection& c, Opcode op, const uint8_t* data, size_t len);
  static constexpr size_t kWriteThroughBytes = 16 * 1024;
  void markDirty(Connection& c);
  void flush(Connection& c);
  void flushDirty();
  void kill(Connection& c, const char* why);
  void reapDead();
  void teardown(Connection& c);
  void onTimers();
  void armTimer(Connection& c, uint64_t deadline);
  void scheduleActivityTimer(Connection& c);
  void beginStop();

  Connection* newConnection(int fd, const PeerAddress& peer);
  void countParseError(ParseError e);
  Connection* lookup(uint64_t handle);
  bool haveSlot() const { return !freeSlots_.empty() || slots_.size() <= Handle::kSlotMask; }
  uint64_t handleOf(const Connection& c) const {
    return Handle{index_, c.slot, c.generation}.pack();
  }
  void setEpoll(Connection& c, bool wantWrite);
  void deliverPending(Connection& c);
  // A request about a connection of another worker goes to that worker's inbox.
  SendStatus forward(Handle h, InboxMessage m);
  void broadcastLocal(uint64_t channel, SharedBuffer* frame);
  void dropSubscriptions(Connection& c);

  Server& server_;
  uint32_t index_;
  std::string name_;
  int epfd_ = -1;
  // Runs Lua services: a C stack sized for Lua (runtime/lua-thread.h).
  LuaThread thread_;
  Inbox<InboxMessage> inbox_;
  std::vector<int> listeners_;
  std::vector<ServiceInstance*> instances_;

  std::vector<Connection*> slots_;  // slot -> connection (null when free)
  std::vector<uint32_t> generations_;
  std::vector<uint32_t> freeSlots_;
  // Handles, not pointers: a connection may die and be freed while listed.
  std::vector<uint64_t> dirtyList_;
  std::vector<uint64_t> deadList_;
  size_t liveConnections_ = 0;

  struct TimerEntry {
    uint64_t deadline;
    uint64_t handle;
    bool operator>(const TimerEntry& o) const { return deadline > o.deadline; }
  };
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<TimerEntry>> timers_;

  uint64_t nowMs_ = 0;
  bool stopping_ = false;
  uint64_t stopDeadline_ = 0;
  bool listenersPaused_ = false;
  uint64_t resumeListenersAt_ = 0;
  std::vector<uint8_t> readBuf_;
  BufferPool pool_;  // outbound chunks, recycled
  // Broadcast channel -> handles of this worker's subscribed connections.
  std::unordered_map<uint64_t, std::vector<uint64_t>> subscribers_;
  std::vector<InboundMessage> batch_;  // complete messages of the connection being read
  Connection* current_ = nullptr;      // connection whose message a handler is processing
  uint64_t currentHandle_ = 0;
  WorkerStats* stats_ = nullptr;
  TimerQueue hostTimers_;
  std::shared_ptr<const Policy> policy_;
  std::vector<uint64_t> readAgain_;      // TLS connections with decrypted bytes left after a pause
  std::unique_ptr<uint8_t[]> tlsStage_;  // small frames gathered into one TLS record
  std::unordered_map<int, IoHandler*> io_;  // watched client sockets, by fd
};

}  // namespace lapps
