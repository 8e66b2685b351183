// The service contract, the half a service instance calls (core/service-instance.h is the
// half it implements). An instance sees two narrow interfaces and nothing else of core:
//   - ServiceHost: the IO worker it runs on (connections: send, close, subscribe, hold,
//     release, fail; broadcast; the per-slice budget). Reactive instances only.
//   - SharedServices: what every instance of every service shares, from any thread
//     (broadcast channels, mqr queues, limits). Standalone instances too.
// Timers, tasks and sockets come from the instance's loop (io/host.h), logging from
// the EventChannel it was made with. Every status a call can answer is in kSendStatuses,
// mapped there once to its C API code and its Lua message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string_view>

#include "lapps.h"
#include "protocol/opcode.h"

namespace lapps {

class BroadcastRegistry;
struct ConnInfo;
struct ConnectVerdict;
class MessageQueues;
class ServiceInstance;
class SharedBuffer;

enum class SendStatus : uint8_t { Ok, NoConnection, Closing, SlowConsumer, NoChannel };

// The one registry of what a status means to a service: the C API's LAPPS_* code
// (native/include/lapps.h) and what a Lua call answers after `false` (ws:send, ws:close,
// bcast:*, LAppS responses). Indexed by SendStatus. The Lua wrappers of `ws` and `bcast`
// index their messages by their own result codes (see api-ws.cc, api-bcast.cc).
struct SendStatusText {
  SendStatus status;
  int code;             // LAPPS_*
  const char* message;  // Lua; null for Ok
};
inline constexpr SendStatusText kSendStatuses[] = {
    {SendStatus::Ok, LAPPS_OK, nullptr},
    {SendStatus::NoConnection, LAPPS_NO_CONNECTION, "no such connection"},
    {SendStatus::Closing, LAPPS_CLOSING, "connection is closing"},
    {SendStatus::SlowConsumer, LAPPS_SLOW_CONSUMER, "connection closed: slow consumer"},
    {SendStatus::NoChannel, LAPPS_NO_CHANNEL,
     "no such channel (create it with bcast:create first)"},
};
constexpr const SendStatusText& sendStatusText(SendStatus s) {
  return kSendStatuses[size_t(s)];
}
constexpr int sendStatusCode(SendStatus s) {
  return sendStatusText(s).code;
}
constexpr const char* sendStatusMessage(SendStatus s) {
  return sendStatusText(s).message;
}
static_assert([] {
  for (size_t i = 0; i < std::size(kSendStatuses); ++i) {
    if (size_t(kSendStatuses[i].status) != i) return false;
  }
  return true;
}());

// The worker a reactive instance runs on, as the instance may use it. Every call happens
// on that worker's thread. There is one implementation, the Worker (core/worker.cc), so the
// calls are plain calls (no virtual dispatch on the send path); what they touch on the hot
// path (the slice budget) is here, inline.
//
// A handle names a connection; one that is stale, invalid, or routed to another service
// than `service` (ServiceInstance::service()) is refused with NoConnection, whichever worker
// it is on. A handle of another worker is checked against that worker's directory, then
// forwarded through its inbox (answered Ok once queued).
class ServiceHost {
 public:
  ServiceHost(const ServiceHost&) = delete;
  ServiceHost& operator=(const ServiceHost&) = delete;

  SendStatus send(uint32_t service, uint64_t handle, Opcode op, const uint8_t* data, size_t len);
  SendStatus close(uint32_t service, uint64_t handle, uint16_t code, std::string_view reason);
  // Broadcast channels. A subscription ends with its connection.
  SendStatus subscribe(uint32_t service, uint64_t channel, uint64_t handle);
  SendStatus unsubscribe(uint32_t service, uint64_t channel, uint64_t handle);
  // Is `handle` an open connection (on any worker) routed to `service`?
  bool reaches(uint32_t service, uint64_t handle);
  // `frame` is a complete encoded frame; the caller keeps its own reference.
  SendStatus broadcast(uint64_t channel, SharedBuffer* frame);

  // The connection's handler failed: it is closed with 1011 (if still open).
  void fail(uint64_t handle);
  // A handler of the connection suspended (a coroutine waits for a timer, a queue or a
  // socket): its later messages wait, in order, and reading from it pauses until release.
  void hold(uint64_t handle);
  // The suspended handler finished: what waited is served (in slices), then reading resumes.
  void release(uint64_t handle);
  // onConnect answers a handshake it left Pending: the 101 (the bytes that arrived
  // meanwhile follow as frames) or the refusal, on the next loop turn (the caller is inside
  // service code). False, and nothing happens, if that handshake is not waiting now for
  // `service` (answered, timed out, the client left, the server stopped); one that ends
  // before the next turn is not answered either.
  bool answerConnect(uint32_t service, uint64_t handle, ConnectVerdict&& verdict);
  // What is known of an open connection of `service` on any worker (ws:info), or null.
  std::shared_ptr<const ConnInfo> info(uint32_t service, uint64_t handle);
  // Closes every open connection of `instance` with `code` (its state was replaced).
  void closeConnectionsOf(const ServiceInstance* instance, uint16_t code, std::string_view reason);

  // Asked by an instance before it hands the next message of a batch to its handler:
  // false once the slice of the connection being served is spent; the messages left wait
  // for the next loop turn, in order. The first message of a slice costs no clock read (a
  // read of one message never does), later ones a coarse one.
  bool sliceGoesOn() { return ++sliceCalls_ == 1 || sliceTimeLeft(); }

 protected:
  ServiceHost() = default;
  ~ServiceHost() = default;

  // The slice budget (Worker::startSlice sets it, sliceTimeLeft spends it).
  bool sliceTimeLeft();        // the clock part of sliceGoesOn
  size_t sliceLeft_ = 0;       // messages the connection being read may still parse
  uint32_t sliceCalls_ = 0;    // messages handed to handlers in the current slice
  uint64_t sliceStartNs_ = 0;  // coarse clock at the slice's second message
  uint64_t sliceLimitNs_ = 0;  // coarse time after which a slice is spent
};

// What every instance shares, whatever thread it runs on. Implemented by the Server.
class SharedServices {
 public:
  virtual BroadcastRegistry& channels() = 0;
  virtual MessageQueues& queues() = 0;
  // limits.mqr_max_bytes: the default and the most a queue may hold.
  virtual size_t mqrMaxBytes() const = 0;
  // bcast:send from a thread that is not a worker (standalone services): the frame goes to
  // every worker through its inbox.
  virtual SendStatus broadcastFromOutside(uint64_t channel, SharedBuffer* frame) = 0;

 protected:
  ~SharedServices() = default;
};

}  // namespace lapps
