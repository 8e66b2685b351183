#include "service-factory.h"

#include <string>
#include <utility>

#include "cmod/c-instance.h"
#include "lua/lua-guard.h"
#include "lua/lua-instance.h"
#include "lua/standalone.h"

namespace lapps {

namespace {

class LanguageFactory final : public ServiceFactory {
 public:
  std::unique_ptr<ServiceInstance> makeReactive(const ServiceSettings& service, uint32_t index,
                                                ServiceHost& host, Host& loop,
                                                SharedServices& shared, EventChannel& events,
                                                std::string& error) override {
    Watchdog& dog = watchdog();
    std::unique_ptr<ServiceInstance> inst;
    LuaDeadline* timed = nullptr;  // watched from now on (a Lua file's top level is timed)
    if (service.kind == ServiceKind::C) {
      inst = makeCInstance(service, index, events);
    } else {
      auto li = std::make_unique<LuaInstance>(service, index, events, LuaInstance::Role::Reactive);
      li->setHost(&loop);
      timed = li->deadline();
      dog.add(timed);
      inst = std::move(li);
    }
    inst->setShared(&shared);
    inst->attach(&host);
    error = inst->load();
    if (!error.empty()) {
      if (timed) dog.remove(timed);  // the instance goes away now
      return nullptr;
    }
    return inst;
  }

  std::unique_ptr<StandaloneService> makeStandalone(const ServiceSettings& service, uint32_t index,
                                                    SharedServices& shared, EventChannel& events,
                                                    std::string& error) override {
    auto inst =
        std::make_unique<LuaInstance>(service, index, events, LuaInstance::Role::Standalone);
    inst->setShared(&shared);
    auto runner = std::make_unique<StandaloneRunner>(std::move(inst));
    LuaInstance& li = runner->instance();
    watchdog().add(li.deadline());  // its file's top level is timed too
    error = li.load();
    if (!error.empty()) {
      watchdog().remove(li.deadline());
      return nullptr;
    }
    return runner;
  }

 private:
  // Started with the first instance, as the server starts loading its services.
  Watchdog& watchdog() {
    if (!watchdog_) watchdog_ = std::make_unique<Watchdog>();
    return *watchdog_;
  }

  std::unique_ptr<Watchdog> watchdog_;
};

}  // namespace

std::unique_ptr<ServiceFactory> makeServiceFactory() {
  return std::make_unique<LanguageFactory>();
}

}  // namespace lapps
