// The service contract, the half a service instance implements: what a worker needs of
// one instance of a service, whatever it is written in (Lua, or a C module loaded with
// dlopen). Every call happens on the instance's worker thread. What the instance may call
// in return is core/service-host.h; instances are made by a ServiceFactory
// (core/service-factory.h) the addon hands to the Server, so core names no language.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/conn-state.h"
#include "core/connect.h"
#include "protocol/frame-parser.h"

namespace lapps {

class ServiceHost;
class SharedServices;

// A complete inbound message, pointing into the worker's read buffer (or the connection's
// reassembly buffer): valid until the batch it belongs to has been dispatched.
struct InboundMessage {
  const uint8_t* data;
  size_t len;
  int opcode;  // 1 text, 2 binary
};

// The messages one read produced for one connection, handed over in one call. The batch
// names its connection: the instance passes `handle` to ServiceHost::fail / hold.
struct MessageBatch {
  uint64_t handle;
  const InboundMessage* items;
  size_t count;
  size_t next = 0;  // the next message to deliver
  // The connection's state, owned by the worker and valid for the batch's duration.
  const ConnState* state = nullptr;
  // May the next message be delivered: the connection is still open. (It is never held
  // during its batch: only its instance holds it, when a handler suspends, and then the
  // batch ends.) One load and compare per message, as cheap as the worker's own check.
  bool open() const { return *state == ConnState::Open; }
};

class ServiceInstance {
 public:
  virtual ~ServiceInstance() = default;

  // Loads the code and checks its entry points; returns an error message naming the
  // file, or "" on success. Called once, on the main thread, before the worker starts.
  virtual std::string load() = 0;
  void attach(ServiceHost* host) { host_ = host; }
  // The IO worker a reactive instance runs on; null for a standalone instance.
  ServiceHost* serviceHost() const { return host_; }
  void setShared(SharedServices* shared) { shared_ = shared; }
  SharedServices* shared() const { return shared_; }
  const std::string& name() const { return name_; }
  // The service's index (ServiceSettings::index): a service may name only connections
  // routed to it (ServiceHost::send and the rest refuse any other handle).
  uint32_t service() const { return service_; }
  // The frame limits of its connections (ServiceRuntime::limits): a copy here, where the
  // read path finds it next to sliceMessages.
  const ParserLimits& limits() const { return limits_; }
  void setLimits(const ParserLimits& limits) { limits_ = limits; }
  // How many messages of one connection the worker hands over per loop turn before it
  // serves the others: learned by the worker from how long this instance's handlers take
  // (Connection::serveBacklog). Worker thread only.
  uint32_t sliceMessages() const { return sliceMessages_; }
  void setSliceMessages(uint32_t n) { sliceMessages_ = n; }

  virtual void onStart() = 0;
  // True if the service has an onConnect entry point (set by load()): the worker then asks
  // onConnect about every handshake routed to this instance before it answers it.
  bool wantsConnect() const { return wantsConnect_; }
  // A complete, routed handshake that passed the ACL and Origin checks: Accept (101),
  // Refuse (the HTTP status and body) or Pending: the instance answers later with
  // ServiceHost::answerConnect, within handshake_timeout_ms. `request` is valid during the
  // call only.
  virtual ConnectVerdict onConnect(uint64_t handle, const ConnectRequest& request) {
    (void)handle;
    (void)request;
    return {};
  }
  // Delivers the batch in order. A handler that fails gets its connection closed with
  // 1011 (ServiceHost::fail); messages after that, or after the connection stopped being
  // open (MessageBatch::open), are not delivered; each delivery is asked of
  // ServiceHost::sliceGoesOn first.
  virtual void onMessages(MessageBatch& batch) = 0;
  // Exactly once per connection that completed its handshake.
  virtual void onDisconnect(uint64_t handle) = 0;
  virtual void onShutdown() = 0;
  // The worker went quiet after a busy spell: give back what can be given (a Lua state
  // collects the garbage the spell left). Returns the bytes freed.
  virtual size_t onIdle() { return 0; }

 protected:
  ServiceInstance(std::string name, uint32_t service) : name_(std::move(name)), service_(service) {}
  void setWantsConnect(bool on) { wantsConnect_ = on; }

 private:
  std::string name_;
  uint32_t service_;
  uint32_t sliceMessages_ = 16;  // until measured: a few ms even for a slow handler
  ParserLimits limits_{0};
  bool wantsConnect_ = false;
  ServiceHost* host_ = nullptr;
  SharedServices* shared_ = nullptr;
};

}  // namespace lapps
