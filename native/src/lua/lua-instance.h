// One instance of a Lua service: its own lua_State, bound to one worker, called only on
// that worker's thread. Every call into Lua is protected; errors are logged with their
// traceback and reported to the caller, never thrown through C++.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/event-channel.h"
#include "core/service-instance.h"
#include "core/settings.h"

struct lua_State;

namespace lapps {

class Worker;

class LuaInstance final : public ServiceInstance {
 public:
  LuaInstance(const ServiceSettings& service, uint32_t index, EventChannel& events);
  ~LuaInstance();
  LuaInstance(const LuaInstance&) = delete;
  LuaInstance& operator=(const LuaInstance&) = delete;

  // Creates the state, registers the modules and runs the service file.
  std::string load() override;

  void onStart() override;
  // Runs onMessage(handler, opcode, message) for each message of the batch, in order,
  // inside one protected call (a Lua loop fed through the FFI). A handler that raises an
  // error or returns false gets its connection closed with 1011 (Worker::failCurrent);
  // messages after it, or after the connection stopped being open, are not delivered.
  void onMessages(MessageBatch& batch) override;
  // FFI side of the dispatcher: the next message to deliver, or 0 when there is none.
  int nextMessage(double* handle, const char** data, size_t* len);
  // FFI side of the dispatcher: onMessage returned false.
  void messageReturnedFalse();
  void onDisconnect(uint64_t handle) override;
  void onShutdown() override;

  void log(LogLevel level, std::string message);

 private:
  enum Entry { kOnStart, kOnMessage, kOnDisconnect, kOnShutdown, kEntryCount };
  bool call(Entry entry, int nargs);

  const ServiceSettings& service_;
  EventChannel& events_;
  lua_State* L_ = nullptr;
  int entryRefs_[kEntryCount];
  int tracebackIndex_ = 0;
  int dispatcherIndex_ = 0;
  MessageBatch* batch_ = nullptr;
  int baseTop_ = 0;  // stack height between calls
};

}  // namespace lapps
