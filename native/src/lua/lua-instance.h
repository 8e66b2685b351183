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
  // Returns false when the handler raised an error or returned false: the caller closes
  // that connection with 1011.
  bool onMessage(uint64_t handle, int opcode, const uint8_t* data, size_t len);
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
};

}  // namespace lapps
