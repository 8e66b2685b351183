// What a worker needs of one instance of a service, whatever it is written in (Lua, or a
// C module loaded with dlopen). Every call happens on the instance's worker thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lapps {

class Server;
class Worker;

// A complete inbound message, pointing into the worker's read buffer (or the connection's
// reassembly buffer): valid until the batch it belongs to has been dispatched.
struct InboundMessage {
  const uint8_t* data;
  size_t len;
  int opcode;  // 1 text, 2 binary
};

// The messages one read produced for one connection, handed over in one call.
struct MessageBatch {
  uint64_t handle;
  const InboundMessage* items;
  size_t count;
  size_t next = 0;  // the next message to deliver
};

class ServiceInstance {
 public:
  virtual ~ServiceInstance() = default;

  // Loads the code and checks its entry points; returns an error message naming the
  // file, or "" on success. Called once, on the main thread, before the worker starts.
  virtual std::string load() = 0;
  void attach(Worker* worker) { worker_ = worker; }
  // The IO worker a reactive instance runs on; null for a standalone instance.
  Worker* worker() const { return worker_; }
  void setServer(Server* server) { server_ = server; }
  Server* server() const { return server_; }
  const std::string& name() const { return name_; }
  // The service's index (ServiceSettings::index): a service may name only connections
  // routed to it (Worker::send and the rest refuse any other handle).
  uint32_t service() const { return service_; }
  // How many messages of one connection the worker hands over per loop turn before it
  // serves the others: learned by the worker from how long this instance's handlers take
  // (Worker::serveBacklog). Worker thread only.
  uint32_t sliceMessages() const { return sliceMessages_; }
  void setSliceMessages(uint32_t n) { sliceMessages_ = n; }

  virtual void onStart() = 0;
  // Delivers the batch in order. A handler that fails gets its connection closed with
  // 1011 (Worker::failCurrent); messages after that, or after the connection stopped
  // being open (Worker::currentOpen), are not delivered.
  virtual void onMessages(MessageBatch& batch) = 0;
  // Exactly once per connection that completed its handshake.
  virtual void onDisconnect(uint64_t handle) = 0;
  virtual void onShutdown() = 0;
  // The worker went quiet after a busy spell: give back what can be given (a Lua state
  // collects the garbage the spell left). Returns the bytes freed.
  virtual size_t onIdle() { return 0; }

 protected:
  ServiceInstance(std::string name, uint32_t service) : name_(std::move(name)), service_(service) {}

 private:
  std::string name_;
  uint32_t service_;
  uint32_t sliceMessages_ = 16;  // until measured: a few ms even for a slow handler
  Worker* worker_ = nullptr;
  Server* server_ = nullptr;
};

}  // namespace lapps
