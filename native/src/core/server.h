// The data plane of one lapps server: services and their Lua instances, the listening
// sockets, and the workers. Owned by the addon's Server object on the Node side.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/broadcast.h"
#include "core/event-channel.h"
#include "core/message-queue.h"
#include "core/policy.h"
#include "core/service-factory.h"
#include "core/service-host.h"
#include "core/settings.h"
#include "core/stats.h"
#include "protocol/frame-parser.h"
#include "security/conn-limiter.h"

namespace lapps {

class Worker;
class SharedBuffer;

// A service at run time: its settings, its instances and where they live.
struct ServiceRuntime {
  ServiceSettings settings;
  std::vector<std::unique_ptr<ServiceInstance>> instances;
  std::vector<uint32_t> instanceWorker;              // instance index -> worker index
  std::vector<std::vector<int32_t>> localInstances;  // worker index -> its instances
  mutable std::atomic<uint32_t> next{0};             // round robin over instances
};

class Server final : public SharedServices {
 public:
  // `factory` makes the service instances (the addon's: core/ names no language).
  Server(Settings settings, EventChannel& events, std::unique_ptr<ServiceFactory> factory);
  ~Server();

  // Loads every service, binds every listener on every worker, starts the workers.
  // Returns the bound port of each listener, or an empty vector with `error` set.
  std::vector<uint16_t> start(std::string& error);
  // Asks every worker and standalone service to drain and stop, within drainTimeoutMs;
  // `done` runs on a helper thread once all have exited.
  void stop(std::function<void()> done);
  // Replaces the ACLs, Origin policies and TLS certificates; connections stay up (a TLS
  // connection keeps the certificate it was accepted with). On error nothing changes.
  // Call from the thread that started the server.
  bool reload(const PolicySettings& policy, std::string& error);

  const Settings& settings() const { return settings_; }
  EventChannel& events() { return events_; }
  Worker& worker(uint32_t i) { return *workers_[i]; }
  uint32_t workerCount() const { return uint32_t(workers_.size()); }
  const ServiceRuntime* route(std::string_view target) const;
  WorkerStats* stats(uint32_t worker) { return &stats_[worker]; }
  ConnLimiter& limiter() { return limiter_; }
  MemoryTrimmer& memory() { return memory_; }
  // SharedServices: what the service instances share.
  BroadcastRegistry& channels() override { return channels_; }
  MessageQueues& queues() override { return queues_; }
  size_t mqrMaxBytes() const override { return settings_.mqrMaxBytes; }
  SendStatus broadcastFromOutside(uint64_t channel, SharedBuffer* frame) override;
  uint64_t* statsBlock() { return reinterpret_cast<uint64_t*>(stats_.get()); }
  size_t statsWords() const { return size_t(settings_.workers) * kCounterCount; }

 private:
  bool loadServices(std::string& error);
  bool startStandalone(std::string& error);
  // Tells every worker and standalone service to stop; their drain ends at deadlineMs
  // (Watchdog::nowMs clock). A later call may only bring the deadline forward.
  void pushStop(uint64_t deadlineMs);
  bool bindListeners(std::vector<uint16_t>& ports, std::string& error);

  Settings settings_;
  EventChannel& events_;
  std::vector<std::unique_ptr<ServiceRuntime>> services_;
  std::unordered_map<std::string, ServiceRuntime*> byTarget_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<WorkerStats[]> stats_;
  BroadcastRegistry channels_;
  bool started_ = false;
  bool stopRequested_ = false;
  MemoryTrimmer memory_;
  MessageQueues queues_{&memory_};
  ConnLimiter limiter_;
  std::shared_ptr<const Policy> policy_;
  std::vector<std::unique_ptr<StandaloneService>> standalone_;
  std::vector<std::string> standaloneNames_;  // the service of each, for errors
  std::thread stopper_;                       // joins the workers after a stop request
  // Last: destroyed first (it owns the Lua watchdog, which must never signal a thread
  // that is gone); reset once the threads have been joined.
  std::unique_ptr<ServiceFactory> factory_;
};

}  // namespace lapps
