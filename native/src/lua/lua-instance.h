// One instance of a Lua service: its own lua_State, bound to one worker, called only on
// that worker's thread. Every call into Lua is protected; errors are logged with their
// traceback and reported to the caller, never thrown through C++.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/event-channel.h"
#include "core/settings.h"

struct lua_State;

namespace lapps {

class Worker;

// A complete inbound message, pointing into the worker's read buffer (or the connection's
// reassembly buffer): valid until the batch it belongs to has been dispatched.
struct InboundMessage {
  const uint8_t* data;
  size_t len;
  int opcode;  // 1 text, 2 binary
};

// The messages one read produced for one connection, handed to Lua in one protected call.
struct MessageBatch {
  uint64_t handle;
  const InboundMessage* items;
  size_t count;
  size_t next = 0;  // the next message the Lua dispatcher takes
};

class LuaInstance {
 public:
  LuaInstance(const ServiceSettings& service, uint32_t index, EventChannel& events);
  ~LuaInstance();
  LuaInstance(const LuaInstance&) = delete;
  LuaInstance& operator=(const LuaInstance&) = delete;

  // Creates the state, registers the modules and runs the service file. Returns an error
  // message (naming the file) or "" on success. Called once, before the worker starts.
  std::string load();
  void attach(Worker* worker) { worker_ = worker; }

  void onStart();
  // Runs onMessage(handler, opcode, message) for each message of the batch, in order,
  // inside one protected call (a Lua loop fed through the FFI). A handler that raises an
  // error or returns false gets its connection closed with 1011 (Worker::failCurrent);
  // messages after it, or after the connection stopped being open, are not delivered.
  void onMessages(MessageBatch& batch);
  // FFI side of the dispatcher: the next message to deliver, or 0 when there is none.
  int nextMessage(double* handle, const char** data, size_t* len);
  // FFI side of the dispatcher: onMessage returned false.
  void messageReturnedFalse();
  void onDisconnect(uint64_t handle);
  void onShutdown();

  const std::string& name() const { return name_; }
  Worker* worker() const { return worker_; }
  void log(LogLevel level, std::string message);

 private:
  enum Entry { kOnStart, kOnMessage, kOnDisconnect, kOnShutdown, kEntryCount };
  bool call(Entry entry, int nargs);

  const ServiceSettings& service_;
  std::string name_;
  EventChannel& events_;
  Worker* worker_ = nullptr;
  lua_State* L_ = nullptr;
  int entryRefs_[kEntryCount];
  int tracebackIndex_ = 0;
  int dispatcherIndex_ = 0;
  MessageBatch* batch_ = nullptr;
  int baseTop_ = 0;  // stack height between calls
};

}  // namespace lapps
