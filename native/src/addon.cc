// The N-API boundary: one class, `Server`, taking flat settings the control plane has
// already validated, and reporting back through one thread-safe function.
#include <napi.h>

#include <atomic>
#include <memory>
#include <string>

#include "core/event-channel.h"
#include "core/policy.h"
#include "core/server.h"
#include "core/settings.h"
#include "security/dev-cert.h"
#include "service-factory.h"

namespace lapps {

namespace {

uint32_t u32(const Napi::Object& o, const char* key) {
  return o.Get(key).As<Napi::Number>().Uint32Value();
}
uint64_t u64(const Napi::Object& o, const char* key) {
  return uint64_t(o.Get(key).As<Napi::Number>().Int64Value());
}
std::string str(const Napi::Object& o, const char* key) {
  return o.Get(key).As<Napi::String>().Utf8Value();
}
std::vector<std::string> strings(const Napi::Object& o, const char* key) {
  std::vector<std::string> out;
  if (!o.Has(key) || !o.Get(key).IsArray()) return out;
  Napi::Array a = o.Get(key).As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  return out;
}
bool has(const Napi::Object& o, const char* key) {
  return o.Has(key) && !o.Get(key).IsUndefined() && !o.Get(key).IsNull();
}

// { rules: [[cidr, allow], ...], fallback: "allow" | "deny" }
AclSettings readAcl(const Napi::Object& o, const char* key) {
  AclSettings acl;
  if (!has(o, key)) return acl;
  Napi::Object a = o.Get(key).As<Napi::Object>();
  acl.set = true;
  acl.fallback = str(a, "fallback") == "deny" ? AclAction::Deny : AclAction::Allow;
  Napi::Array rules = a.Get("rules").As<Napi::Array>();
  for (uint32_t i = 0; i < rules.Length(); ++i) {
    Napi::Array r = rules.Get(i).As<Napi::Array>();
    acl.rules.push_back(
        AclRule{r.Get(0u).As<Napi::String>().Utf8Value(),
                r.Get(1u).ToBoolean().Value() ? AclAction::Allow : AclAction::Deny});
  }
  return acl;
}

TlsSettings readTls(const Napi::Object& t) {
  TlsSettings tls;
  Napi::Array certs = t.Get("certificates").As<Napi::Array>();
  for (uint32_t i = 0; i < certs.Length(); ++i) {
    Napi::Object c = certs.Get(i).As<Napi::Object>();
    tls.certificates.push_back(
        TlsCertificateSettings{str(c, "cert"), str(c, "key"), strings(c, "serverNames")});
  }
  if (has(t, "ca")) tls.caFile = str(t, "ca");
  const std::string mode = has(t, "clientCert") ? str(t, "clientCert") : "none";
  tls.clientCert = mode == "require"    ? ClientCertMode::Require
                   : mode == "optional" ? ClientCertMode::Optional
                                        : ClientCertMode::None;
  tls.minVersion =
      has(t, "minVersion") && str(t, "minVersion") == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (has(t, "ciphers")) tls.ciphers = str(t, "ciphers");
  if (has(t, "ciphersuites")) tls.ciphersuites = str(t, "ciphersuites");
  return tls;
}

// { acl?, services: [{ acl?, origins?, allowMissingOrigin }], tls: [null | {...}] }
PolicySettings readPolicy(const Napi::Object& o) {
  PolicySettings p;
  p.acl = readAcl(o, "acl");
  p.trustedProxies = readAcl(o, "trustedProxies");
  Napi::Array services = o.Get("services").As<Napi::Array>();
  for (uint32_t i = 0; i < services.Length(); ++i) {
    Napi::Object v = services.Get(i).As<Napi::Object>();
    ServicePolicySettings sp;
    sp.acl = readAcl(v, "acl");
    sp.originsSet = has(v, "origins");
    sp.origins = strings(v, "origins");
    sp.extraOrigins = strings(v, "extraOrigins");
    sp.allowMissingOrigin =
        !has(v, "allowMissingOrigin") || v.Get("allowMissingOrigin").ToBoolean();
    p.services.push_back(std::move(sp));
  }
  Napi::Array tls = o.Get("tls").As<Napi::Array>();
  for (uint32_t i = 0; i < tls.Length(); ++i) {
    Napi::Value t = tls.Get(i);
    if (t.IsObject()) {
      p.tls.emplace_back(readTls(t.As<Napi::Object>()));
    } else {
      p.tls.emplace_back(std::nullopt);
    }
  }
  return p;
}

Settings readSettings(const Napi::Object& o) {
  Settings s;
  s.workers = u32(o, "workers");
  s.maxMessageSize = u64(o, "maxMessageSize");
  s.maxHeaderBytes = u32(o, "maxHeaderBytes");
  s.maxHeaders = u32(o, "maxHeaders");
  s.handshakeTimeoutMs = u32(o, "handshakeTimeoutMs");
  s.idleTimeoutMs = u32(o, "idleTimeoutMs");
  s.pingIntervalMs = u32(o, "pingIntervalMs");
  s.closeTimeoutMs = u32(o, "closeTimeoutMs");
  if (has(o, "drainTimeoutMs")) s.drainTimeoutMs = u32(o, "drainTimeoutMs");
  s.outboundHighWaterMark = u64(o, "outboundHighWaterMark");
  if (has(o, "slowConsumerTimeoutMs")) s.slowConsumerTimeoutMs = u32(o, "slowConsumerTimeoutMs");
  if (has(o, "maxOutboundQueue")) s.maxOutboundQueue = u64(o, "maxOutboundQueue");
  s.autoFragmentSize = u32(o, "autoFragmentSize");
  if (has(o, "mqrMaxBytes")) s.mqrMaxBytes = u64(o, "mqrMaxBytes");
  if (has(o, "maxFrameSize")) s.maxFrameSize = u64(o, "maxFrameSize");
  if (has(o, "maxFragments")) s.maxFragments = u32(o, "maxFragments");
  if (has(o, "maxConnections")) s.maxConnections = u32(o, "maxConnections");
  if (has(o, "maxConnectionsPerIp")) s.maxConnectionsPerIp = u32(o, "maxConnectionsPerIp");
  if (has(o, "newConnectionsPerIpPerSec")) {
    s.newConnectionsPerIpPerSec = u32(o, "newConnectionsPerIpPerSec");
  }
  if (has(o, "proxyProtocolTimeoutMs")) s.proxyProtocolTimeoutMs = u32(o, "proxyProtocolTimeoutMs");
  s.accessLog = has(o, "accessLog") && o.Get("accessLog").ToBoolean().Value();
  if (has(o, "policy")) s.policy = readPolicy(o.Get("policy").As<Napi::Object>());
  Napi::Array listeners = o.Get("listeners").As<Napi::Array>();
  for (uint32_t i = 0; i < listeners.Length(); ++i) {
    Napi::Object l = listeners.Get(i).As<Napi::Object>();
    const bool tls = i < s.policy.tls.size() && s.policy.tls[i].has_value();
    const bool v6only = has(l, "ipv6Only") && l.Get("ipv6Only").ToBoolean().Value();
    const bool proxy = has(l, "proxyProtocol") && l.Get("proxyProtocol").ToBoolean().Value();
    s.listeners.push_back(
        ListenerSettings{str(l, "host"), uint16_t(u32(l, "port")), tls, v6only, proxy});
  }
  s.policy.tls.resize(s.listeners.size());
  Napi::Array services = o.Get("services").As<Napi::Array>();
  for (uint32_t i = 0; i < services.Length(); ++i) {
    Napi::Object v = services.Get(i).As<Napi::Object>();
    ServiceSettings svc;
    svc.index = i;
    svc.name = str(v, "name");
    svc.requestTarget = str(v, "requestTarget");
    svc.protocol = Protocol(u32(v, "protocol"));
    svc.kind = v.Has("kind") ? ServiceKind(u32(v, "kind")) : ServiceKind::Lua;
    if (v.Has("subprotocols")) {
      Napi::Array protos = v.Get("subprotocols").As<Napi::Array>();
      for (uint32_t k = 0; k < protos.Length(); ++k) {
        svc.subprotocols.push_back(protos.Get(k).As<Napi::String>().Utf8Value());
      }
    }
    if (v.Has("extraHeaders")) {
      Napi::Array headers = v.Get("extraHeaders").As<Napi::Array>();
      for (uint32_t k = 0; k < headers.Length(); ++k) {
        Napi::Array pair = headers.Get(k).As<Napi::Array>();
        svc.extraHeaderLines += pair.Get(0u).As<Napi::String>().Utf8Value() + ": " +
                                pair.Get(1u).As<Napi::String>().Utf8Value() + "\r\n";
      }
    }
    svc.instances = u32(v, "instances");
    svc.maxMessageSize = u64(v, "maxMessageSize");
    svc.source = str(v, "source");
    svc.standalone = v.Has("standalone") && v.Get("standalone").ToBoolean().Value();
    svc.started = !v.Has("started") || v.Get("started").ToBoolean().Value();
    if (v.Has("preload")) {
      Napi::Array mods = v.Get("preload").As<Napi::Array>();
      for (uint32_t k = 0; k < mods.Length(); ++k) {
        svc.preload.push_back(mods.Get(k).As<Napi::String>().Utf8Value());
      }
    }
    if (v.Has("memoryLimit")) svc.memoryLimit = u64(v, "memoryLimit");
    if (v.Has("handlerTimeoutMs")) svc.handlerTimeoutMs = u32(v, "handlerTimeoutMs");
    svc.sandbox = v.Has("sandbox") && v.Get("sandbox").ToBoolean().Value();
    if (v.Has("maxFailures")) svc.maxFailures = u32(v, "maxFailures");
    s.services.push_back(std::move(svc));
  }
  return s;
}

const char* levelName(LogLevel l) {
  switch (l) {
    case LogLevel::Error:
      return "error";
    case LogLevel::Warn:
      return "warn";
    case LogLevel::Info:
      return "info";
    case LogLevel::Debug:
      return "debug";
  }
  return "info";
}

}  // namespace

class ServerWrap : public Napi::ObjectWrap<ServerWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(
        env, "Server",
        {InstanceMethod<&ServerWrap::start>("start"), InstanceMethod<&ServerWrap::stop>("stop"),
         InstanceMethod<&ServerWrap::stats>("stats"),
         InstanceMethod<&ServerWrap::reload>("reload")});
  }

  explicit ServerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ServerWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "Server(settings, onEvents)").ThrowAsJavaScriptException();
      return;
    }
    onEvents_ = Napi::Persistent(info[1].As<Napi::Function>());
    channel_ = std::make_unique<EventChannel>([this] {
      if (live_.load(std::memory_order_acquire)) tsfn_.NonBlockingCall(this, deliver);
    });
    server_ = std::make_shared<Server>(readSettings(info[0].As<Napi::Object>()), *channel_,
                                       makeServiceFactory());
  }

  // Reached when not running (a running server holds a reference to itself) or at
  // environment teardown; the thread-safe function is never touched here, Node is
  // finalizing it on its own at teardown.
  ~ServerWrap() override {
    live_.store(false, std::memory_order_release);
    server_.reset();  // joins any worker still running
  }

 private:
  // Main thread, once per batch of events.
  static void deliver(Napi::Env env, Napi::Function onEvents, ServerWrap* self) {
    if (!env) return;
    EventChannel::Batch drained = self->channel_->drain();
    const std::vector<Event>& events = drained.events;
    if (events.empty()) return;
    Napi::Array batch = Napi::Array::New(env);
    bool stopped = false;
    uint32_t n = 0;
    for (const Event& e : events) {
      if (e.kind == Event::Kind::Stopped) {
        stopped = true;
        continue;
      }
      Napi::Object o = Napi::Object::New(env);
      o.Set("kind", "log");
      o.Set("level", levelName(e.level));
      o.Set("source", e.source);
      o.Set("message", e.message);
      if (!e.fields.empty()) {
        // Structured values (the access log): numbers stay numbers in a JSON log.
        Napi::Object f = Napi::Object::New(env);
        for (const LogField& field : e.fields) {
          if (field.isNumber) {
            f.Set(field.key, Napi::Number::New(env, double(field.number)));
          } else {
            f.Set(field.key, field.text);
          }
        }
        o.Set("fields", f);
      }
      batch.Set(n++, o);
    }
    // Lines the full queue dropped, by level (error, warn, info, debug).
    Napi::Array dropped = Napi::Array::New(env, drained.dropped.size());
    uint64_t lost = 0;
    for (uint32_t i = 0; i < drained.dropped.size(); ++i) {
      dropped.Set(i, Napi::Number::New(env, double(drained.dropped[i])));
      lost += drained.dropped[i];
    }
    if (n || lost) onEvents.Call({batch, dropped});
    if (stopped) self->finishStop(env);
  }

  Napi::Value start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (running_) {
      Napi::Error::New(env, "server already started").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    // The channel must be able to wake Node before the first worker runs.
    tsfn_ = Napi::ThreadSafeFunction::New(env, onEvents_.Value(), "lapps-events", 0, 1);
    live_.store(true, std::memory_order_release);
    std::string error;
    std::vector<uint16_t> ports = server_->start(error);
    if (!error.empty()) {
      live_.store(false, std::memory_order_release);
      tsfn_.Release();
      Napi::Error err = Napi::Error::New(env, error);
      err.Set("code", "LAPPS_START_FAILED");
      err.ThrowAsJavaScriptException();
      return env.Undefined();
    }
    running_ = true;
    self_ = Napi::Persistent(Value());
    Napi::Array out = Napi::Array::New(env, ports.size());
    for (uint32_t i = 0; i < ports.size(); ++i) out.Set(i, Napi::Number::New(env, ports[i]));
    return out;
  }

  Napi::Value stop(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto deferred = std::make_unique<Napi::Promise::Deferred>(env);
    Napi::Promise promise = deferred->Promise();
    if (!running_) {
      deferred->Resolve(env.Undefined());
      return promise;
    }
    stopDeferred_ = std::move(deferred);
    running_ = false;
    EventChannel* channel = channel_.get();
    server_->stop([channel] {
      channel->post(Event{Event::Kind::Stopped, LogLevel::Info, {}, {}});
    });
    return promise;
  }

  void finishStop(Napi::Env env) {
    if (stopDeferred_) {
      stopDeferred_->Resolve(env.Undefined());
      stopDeferred_.reset();
    }
    live_.store(false, std::memory_order_release);
    tsfn_.Release();
    self_.Reset();
  }

  // reload(policy): new ACLs, Origin policies and certificates; throws (nothing changed)
  // with a message naming the problem.
  Napi::Value reload(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      Napi::TypeError::New(env, "reload(policy)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::string error;
    PolicySettings p = readPolicy(info[0].As<Napi::Object>());
    p.tls.resize(server_->settings().listeners.size());
    if (!server_->reload(p, error)) {
      Napi::Error err = Napi::Error::New(env, error);
      err.Set("code", "LAPPS_RELOAD_FAILED");
      err.ThrowAsJavaScriptException();
    }
    return env.Undefined();
  }

  // Counters as a BigUint64Array over native memory: no copy per read.
  Napi::Value stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto* keep = new std::shared_ptr<Server>(server_);
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
        env, server_->statsBlock(), server_->statsWords() * sizeof(uint64_t),
        [](Napi::Env, void*, std::shared_ptr<Server>* hint) { delete hint; }, keep);
    napi_value arr;
    napi_create_typedarray(env, napi_biguint64_array, server_->statsWords(), ab, 0, &arr);
    return Napi::Value(env, arr);
  }

  std::unique_ptr<EventChannel> channel_;
  std::shared_ptr<Server> server_;
  Napi::FunctionReference onEvents_;
  Napi::ThreadSafeFunction tsfn_;
  std::atomic<bool> live_{false};  // tsfn_ exists and is not released
  Napi::ObjectReference self_;
  std::unique_ptr<Napi::Promise::Deferred> stopDeferred_;
  bool running_ = false;
};

// checkPolicy(policy, serviceNames): the error compiling it would give (ACL entries,
// origins, certificate files), or null. For `lapps check` and config loading.
Napi::Value checkPolicy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsArray()) {
    Napi::TypeError::New(env, "checkPolicy(policy, serviceNames)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  PolicySettings p = readPolicy(info[0].As<Napi::Object>());
  std::vector<ServiceSettings> services;
  Napi::Array names = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    ServiceSettings s;
    s.index = i;
    s.name = names.Get(i).As<Napi::String>().Utf8Value();
    services.push_back(std::move(s));
  }
  std::string error;
  if (Policy::compile(p, services, error)) return env.Null();
  return Napi::String::New(env, error);
}

// writeDevCertificate(certFile, keyFile, days, overwrite): throws with the reason.
Napi::Value writeDevCert(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsString() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "writeDevCertificate(cert, key, days, overwrite)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string error;
  if (!writeDevCertificate(
          info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value(),
          info[2].As<Napi::Number>().Int32Value(), info[3].ToBoolean().Value(), error)) {
    Napi::Error::New(env, error).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::String::New(env, LAPPS_VERSION));
  exports.Set("checkPolicy", Napi::Function::New(env, checkPolicy, "checkPolicy"));
  exports.Set("writeDevCertificate", Napi::Function::New(env, writeDevCert, "writeDevCertificate"));
  exports.Set("Server", ServerWrap::define(env));
  return exports;
}

}  // namespace lapps

static Napi::Object InitLapps(Napi::Env env, Napi::Object exports) {
  return lapps::init(env, exports);
}

NODE_API_MODULE(lapps, InitLapps)
