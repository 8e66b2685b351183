// How the Server gets its service instances without naming a language: the addon hands it
// a ServiceFactory that knows Lua (lua/) and C modules (cmod/). core/ sees only the
// contract (core/service-instance.h, core/service-host.h) and this.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/event-channel.h"
#include "core/service-host.h"
#include "core/service-instance.h"
#include "core/settings.h"
#include "io/host.h"

namespace lapps {

// A standalone service instance: its own thread and loop, init() then run().
class StandaloneService {
 public:
  virtual ~StandaloneService() = default;
  // Starts the thread and waits until init() has returned; false if it failed.
  virtual bool start() = 0;
  // Asks it to finish; does not wait. What still runs at deadlineMs (monotonicMs
  // clock, io/clock.h) is cut. A later call may only bring the deadline forward.
  virtual void stop(uint64_t deadlineMs) = 0;
  virtual void join() = 0;
};

class ServiceFactory {
 public:
  virtual ~ServiceFactory() = default;
  // Instance `index` of a reactive service, loaded, attached to `host` (the worker it runs
  // on, whose loop is `loop`). Null with `error` set (naming the file) if it cannot load.
  // Called on the main thread before the workers start.
  virtual std::unique_ptr<ServiceInstance> makeReactive(const ServiceSettings& service,
                                                        uint32_t index, ServiceHost& host,
                                                        Host& loop, SharedServices& shared,
                                                        EventChannel& events,
                                                        std::string& error) = 0;
  // Instance `index` of a standalone service, loaded (its file's top level has run), not
  // started. Null with `error` set if it cannot load.
  virtual std::unique_ptr<StandaloneService> makeStandalone(const ServiceSettings& service,
                                                            uint32_t index, SharedServices& shared,
                                                            EventChannel& events,
                                                            std::string& error) = 0;
};

}  // namespace lapps
