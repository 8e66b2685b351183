// A service instance backed by a C module (native/include/lapps.h). The module's callbacks
// run on the worker thread; the API table maps its calls onto the service API
// (core/service-host.h).
#include "cmod/c-instance.h"

#include <dlfcn.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/broadcast.h"
#include "core/peer-text.h"
#include "core/service-host.h"
#include "lapps.h"
#include "protocol/close-code.h"
#include "protocol/frame-encoder.h"
#include "protocol/http-fields.h"
#include "protocol/utf8-validator.h"

namespace lapps {

namespace {

// The descriptor of the first ABI 1 release ends with on_shutdown. A descriptor may be
// larger (a newer header appended fields) but never smaller; fields appended later must
// be checked against module_->size before use.
constexpr uint32_t kMinModuleSize =
    offsetof(lapps_module_v1, on_shutdown) + sizeof(lapps_module_v1::on_shutdown);
constexpr uint32_t kOnConnectEnd =
    offsetof(lapps_module_v1, on_connect) + sizeof(lapps_module_v1::on_connect);
// A refusal's body: a short text, as for Lua services.
constexpr size_t kMaxReasonBytes = 1024;

LogLevel toLogLevel(int level) {
  switch (level) {
    case LAPPS_LOG_ERROR:
      return LogLevel::Error;
    case LAPPS_LOG_WARN:
      return LogLevel::Warn;
    case LAPPS_LOG_DEBUG:
      return LogLevel::Debug;
    default:
      return LogLevel::Info;
  }
}

class CInstance final : public ServiceInstance {
 public:
  CInstance(const ServiceSettings& service, uint32_t index, EventChannel& events)
      : ServiceInstance(service.name + "#" + std::to_string(index), service.index),
        source_(service.source),
        events_(events) {}

  ~CInstance() override {
    if (self_ && module_->destroy) module_->destroy(self_);
    if (dl_) dlclose(dl_);
  }
  CInstance(const CInstance&) = delete;
  CInstance& operator=(const CInstance&) = delete;

  std::string load() override {
    // A bare file name would make dlopen search the system's library path.
    std::string path = source_.find('/') == std::string::npos ? "./" + source_ : source_;
    dlerror();
    dl_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!dl_) {
      const char* err = dlerror();
      return source_ + ": cannot load the C module: " + (err ? err : "dlopen failed");
    }
    dlerror();
    void* sym = dlsym(dl_, LAPPS_SERVICE_SYMBOL_V1);
    if (!sym) {
      return source_ + ": not a lapps C module: symbol " LAPPS_SERVICE_SYMBOL_V1 " not found";
    }
    auto entry = reinterpret_cast<lapps_service_v1_fn>(sym);
    module_ = entry();
    if (!module_) return source_ + ": " LAPPS_SERVICE_SYMBOL_V1 "() returned NULL";
    if (module_->abi_version != LAPPS_ABI_VERSION) {
      return source_ + ": ABI version " + std::to_string(module_->abi_version) +
             ", this server speaks " + std::to_string(LAPPS_ABI_VERSION);
    }
    if (module_->size < kMinModuleSize) {
      return source_ + ": module descriptor is " + std::to_string(module_->size) +
             " bytes, ABI version 1 needs at least " + std::to_string(kMinModuleSize) +
             " (rebuild it against lapps.h)";
    }
    if (!module_->create) return source_ + ": required callback 'create' is missing";
    if (!module_->on_message) return source_ + ": required callback 'on_message' is missing";

    api_.abi_version = LAPPS_ABI_VERSION;
    api_.size = sizeof(lapps_api_v1);
    api_.send = &apiSend;
    api_.close = &apiClose;
    api_.log = &apiLog;
    api_.bcast_create = &apiBcastCreate;
    api_.bcast_subscribe = &apiBcastSubscribe;
    api_.bcast_unsubscribe = &apiBcastUnsubscribe;
    api_.bcast_send = &apiBcastSend;
    api_.connect_accept = &apiConnectAccept;
    api_.connect_refuse = &apiConnectRefuse;
    // on_connect was appended to the descriptor: a module built before has none.
    if (module_->size >= kOnConnectEnd && module_->on_connect) {
      onConnect_ = module_->on_connect;
      setWantsConnect(true);
    }
    self_ = module_->create(&api_, this, name().c_str());
    if (!self_) return source_ + ": create() failed for instance " + name();
    if (module_->name) {
      log(LogLevel::Debug, std::string("C module '") + module_->name + "' loaded from " + source_);
    }
    return {};
  }

  void onStart() override {
    thread_ = pthread_self();
    started_.store(true, std::memory_order_release);
    if (module_->on_start) module_->on_start(self_);
  }

  void onMessages(MessageBatch& batch) override {
    ServiceHost* w = serviceHost();
    while (batch.next < batch.count && batch.open() && w->sliceGoesOn()) {
      const InboundMessage& m = batch.items[batch.next++];
      int rc = module_->on_message(self_, batch.handle, m.opcode, m.data, m.len);
      if (rc != 0) {
        log(LogLevel::Warn, "on_message failed (returned " + std::to_string(rc) + ")");
        w->fail(batch.handle);
        return;
      }
    }
  }

  ConnectVerdict onConnect(uint64_t handle, const ConnectRequest& request) override {
    auto str = [](std::string_view s) { return lapps_str{s.data(), s.size()}; };
    std::vector<std::pair<std::string, std::string>> fields;
    collectHeaderFields(request.head, fields);
    std::vector<lapps_header> headers;
    headers.reserve(fields.size());
    for (const auto& [name, value] : fields) headers.push_back({str(name), str(value)});
    std::string ip = peerIp(request.peer);
    lapps_request r{};
    r.size = sizeof r;
    r.method = str(request.method);
    r.target = str(request.target);
    r.path = str(request.path);
    r.query = str(request.query);
    r.origin = str(request.origin);
    r.subprotocol = str(request.subprotocol);
    r.headers = headers.data();
    r.header_count = headers.size();
    r.ip = ip.c_str();
    r.port = peerPort(request.peer);
    if (const TlsInfo* t = request.tls) {
      auto text = [](const std::string& s) { return s.empty() ? nullptr : s.c_str(); };
      r.tls_version = t->version.c_str();
      r.tls_cipher = t->cipher.c_str();
      r.tls_sni = text(t->sni);
      r.tls_subject = t->clientCert ? t->subject.c_str() : nullptr;
      r.tls_issuer = t->clientCert ? t->issuer.c_str() : nullptr;
      r.tls_fingerprint = t->clientCert ? t->fingerprint.c_str() : nullptr;
    }
    lapps_refusal refusal{403, nullptr, 0};
    int rc = onConnect_(self_, handle, &r, &refusal);
    switch (rc) {
      case LAPPS_CONNECT_ACCEPT:
        return {};
      case LAPPS_CONNECT_PENDING:
        return ConnectVerdict::pending();
      case LAPPS_CONNECT_REFUSE:
        return refusalOf(refusal.status, refusal.reason, refusal.reason_len);
      default:
        log(LogLevel::Error, "on_connect returned " + std::to_string(rc) +
                                 " (LAPPS_CONNECT_ACCEPT, _REFUSE or _PENDING expected)");
        return ConnectVerdict::refuse(500, "internal error");
    }
  }

  void onDisconnect(uint64_t handle) override {
    if (module_->on_disconnect) module_->on_disconnect(self_, handle);
  }

  void onShutdown() override {
    if (module_->on_shutdown) module_->on_shutdown(self_);
  }

 private:
  // A refusal as the module gave it, or 500 (logged) if it is not one.
  ConnectVerdict refusalOf(int status, const char* reason, size_t len) {
    if (status < 400 || status > 599 || (!reason && len)) {
      log(LogLevel::Error,
          "on_connect refused with status " + std::to_string(status) +
              (status < 400 || status > 599 ? " (400-599 expected)" : " and a NULL reason"));
      return ConnectVerdict::refuse(500, "internal error");
    }
    return ConnectVerdict::refuse(
        status, std::string(reason ? reason : "", std::min(len, kMaxReasonBytes)));
  }

  void log(LogLevel level, std::string message) {
    events_.log(level, "service " + name(), std::move(message));
  }

  // The API functions run only on the worker thread, after onStart.
  bool onWorkerThread() const {
    return started_.load(std::memory_order_acquire) && pthread_equal(thread_, pthread_self());
  }

  static int apiSend(void* host, uint64_t handle, int opcode, const void* data, size_t len) {
    auto* self = static_cast<CInstance*>(host);
    if (!self || !self->onWorkerThread()) return LAPPS_WRONG_THREAD;
    if ((opcode != LAPPS_OPCODE_TEXT && opcode != LAPPS_OPCODE_BINARY) || (!data && len)) {
      return LAPPS_INVALID;
    }
    static const uint8_t kEmpty = 0;
    const auto* bytes = data ? static_cast<const uint8_t*>(data) : &kEmpty;
    if (opcode == LAPPS_OPCODE_TEXT && !isValidUtf8(bytes, len)) return LAPPS_NOT_UTF8;
    return sendStatusCode(self->serviceHost()->send(
        self->service(), handle, opcode == LAPPS_OPCODE_TEXT ? Opcode::Text : Opcode::Binary, bytes,
        len));
  }

  static int apiClose(void* host, uint64_t handle, int code, const char* reason, size_t len) {
    auto* self = static_cast<CInstance*>(host);
    if (!self || !self->onWorkerThread()) return LAPPS_WRONG_THREAD;
    if (code < 1000 || code > 4999 || !isValidCloseCode(uint16_t(code))) return LAPPS_INVALID;
    if ((!reason && len) || len > kMaxCloseReason) return LAPPS_INVALID;
    if (!reason) reason = "";
    if (!isValidUtf8(reinterpret_cast<const uint8_t*>(reason), len)) return LAPPS_NOT_UTF8;
    return sendStatusCode(self->serviceHost()->close(self->service(), handle, uint16_t(code),
                                                     std::string_view(reason, len)));
  }

  static void apiLog(void* host, int level, const char* message) {
    auto* self = static_cast<CInstance*>(host);
    if (!self) return;
    self->log(toLogLevel(level), message ? message : "(null)");
  }

  static constexpr uint64_t kMaxChannel = (uint64_t(1) << 53) - 1;

  static int apiBcastCreate(void* host, uint64_t channel) {
    auto* self = static_cast<CInstance*>(host);
    if (!self || !self->shared()) return LAPPS_WRONG_THREAD;
    if (channel > kMaxChannel) return LAPPS_INVALID;
    self->shared()->channels().create(channel);
    return LAPPS_OK;
  }

  static int subscription(void* host, uint64_t channel, uint64_t handle, bool on) {
    auto* self = static_cast<CInstance*>(host);
    if (!self || !self->onWorkerThread()) return LAPPS_WRONG_THREAD;
    if (channel > kMaxChannel) return LAPPS_INVALID;
    ServiceHost* w = self->serviceHost();
    return sendStatusCode(on ? w->subscribe(self->service(), channel, handle)
                             : w->unsubscribe(self->service(), channel, handle));
  }
  static int apiBcastSubscribe(void* host, uint64_t channel, uint64_t handle) {
    return subscription(host, channel, handle, true);
  }
  static int apiBcastUnsubscribe(void* host, uint64_t channel, uint64_t handle) {
    return subscription(host, channel, handle, false);
  }

  static int apiBcastSend(void* host, uint64_t channel, int opcode, const void* data, size_t len) {
    auto* self = static_cast<CInstance*>(host);
    if (!self || !self->onWorkerThread()) return LAPPS_WRONG_THREAD;
    if ((opcode != LAPPS_OPCODE_TEXT && opcode != LAPPS_OPCODE_BINARY) || (!data && len) ||
        channel > kMaxChannel) {
      return LAPPS_INVALID;
    }
    static const uint8_t kEmpty = 0;
    const auto* bytes = data ? static_cast<const uint8_t*>(data) : &kEmpty;
    if (opcode == LAPPS_OPCODE_TEXT && !isValidUtf8(bytes, len)) return LAPPS_NOT_UTF8;
    SharedBuffer* frame = encodeBroadcastFrame(
        opcode == LAPPS_OPCODE_TEXT ? Opcode::Text : Opcode::Binary, bytes, len);
    int rc = sendStatusCode(self->serviceHost()->broadcast(channel, frame));
    frame->release();
    return rc;
  }

  static int apiConnectAccept(void* host, uint64_t handle) {
    auto* self = static_cast<CInstance*>(host);
    if (!self || !self->onWorkerThread()) return LAPPS_WRONG_THREAD;
    return self->serviceHost()->answerConnect(self->service(), handle, ConnectVerdict{})
               ? LAPPS_OK
               : LAPPS_NO_CONNECTION;
  }

  static int apiConnectRefuse(void* host, uint64_t handle, int status, const char* reason,
                              size_t len) {
    auto* self = static_cast<CInstance*>(host);
    if (!self || !self->onWorkerThread()) return LAPPS_WRONG_THREAD;
    if (status < 400 || status > 599 || (!reason && len)) return LAPPS_INVALID;
    ConnectVerdict v = ConnectVerdict::refuse(
        status, std::string(reason ? reason : "", std::min(len, kMaxReasonBytes)));
    return self->serviceHost()->answerConnect(self->service(), handle, std::move(v))
               ? LAPPS_OK
               : LAPPS_NO_CONNECTION;
  }

  std::string source_;
  EventChannel& events_;
  void* dl_ = nullptr;
  const lapps_module_v1* module_ = nullptr;
  decltype(lapps_module_v1::on_connect) onConnect_ = nullptr;
  lapps_api_v1 api_{};
  void* self_ = nullptr;
  pthread_t thread_{};
  std::atomic<bool> started_{false};  // thread_ is set; read by any thread calling the API
};

}  // namespace

std::unique_ptr<ServiceInstance> makeCInstance(const ServiceSettings& service, uint32_t index,
                                               EventChannel& events) {
  return std::make_unique<CInstance>(service, index, events);
}

}  // namespace lapps
