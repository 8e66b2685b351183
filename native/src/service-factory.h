// The addon's ServiceFactory (core/service-factory.h): the one place that knows which
// language a service is written in.
#pragma once

#include <memory>

#include "core/service-factory.h"

namespace lapps {

// Lua services (lua/), reactive and standalone, and C modules (cmod/). It owns the watchdog
// that times Lua code, so it must outlive every thread that runs Lua (the Server destroys
// it once its workers and standalone services are joined).
std::unique_ptr<ServiceFactory> makeServiceFactory();

}  // namespace lapps
