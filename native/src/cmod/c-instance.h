// Instances of services written in C (native/include/lapps.h), loaded with dlopen.
#pragma once

#include <cstdint>
#include <memory>

#include "core/event-channel.h"
#include "core/service-instance.h"
#include "core/settings.h"

namespace lapps {

// An instance of the C module at service.source. load() dlopens it and checks its ABI.
std::unique_ptr<ServiceInstance> makeCInstance(const ServiceSettings& service, uint32_t index,
                                               EventChannel& events);

}  // namespace lapps
