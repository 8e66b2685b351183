// Flat server settings as the control plane hands them over, already validated.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "security/acl.h"
#include "security/tls-server.h"

namespace lapps {

// Raw: frames go to onMessage as they are; Lapps: the LAppS CBOR protocol.
enum class Protocol : uint8_t { Raw = 0, Lapps = 1 };
enum class ServiceKind : uint8_t { Lua = 0, C = 1 };

struct ServiceSettings {
  uint32_t index = 0;  // position in Settings::services (and PolicySettings::services)
  std::string name;
  std::string requestTarget;
  Protocol protocol = Protocol::Raw;
  ServiceKind kind = ServiceKind::Lua;
  uint32_t instances = 1;
  uint64_t maxMessageSize = 16 << 20;
  std::string source;
  // Subprotocols accepted, in preference order (LAppS proto_alias included).
  std::vector<std::string> subprotocols;
  // Extra headers for the 101 response, as complete "Name: value\r\n" lines.
  std::string extraHeaderLines;
  // Runs on its own threads (init, run, must_stop) instead of serving a request path.
  bool standalone = false;
  // Started with the server (auto_start, or a dependency of a started service).
  bool started = true;
  // Modules loaded into every instance, as globals, before the service file.
  std::vector<std::string> preload;
  uint64_t memoryLimit = 256ull << 20;
  uint32_t handlerTimeoutMs = 5000;  // 0 = never stop a handler
  bool sandbox = false;
  uint32_t maxFailures = 100;  // errors within a minute before the instance is recycled
};

struct ListenerSettings {
  std::string host;
  uint16_t port = 0;
  bool tls = false;  // wss: PolicySettings::tls holds its certificates
  // IPV6_V6ONLY on an IPv6 address; off, "::" also takes IPv4 clients (as ::ffff:a.b.c.d).
  bool ipv6Only = false;
  // Every connection starts with a PROXY protocol header (v1 or v2) naming the client.
  bool proxyProtocol = false;
};

// Rules as configured; absent = everyone may connect.
struct AclSettings {
  bool set = false;
  std::vector<AclRule> rules;
  AclAction fallback = AclAction::Allow;
};

struct ServicePolicySettings {
  AclSettings acl;
  bool originsSet = false;           // no list: same-origin
  std::vector<std::string> origins;  // "*", "null", "scheme://host[:port]", "scheme://*.domain"
  // Without a list: origins allowed besides the same origin (the dev static server's page).
  std::vector<std::string> extraOrigins;
  bool allowMissingOrigin = true;
};

// What a reload (SIGHUP) may replace while connections stay up: ACLs, Origin policies,
// certificates. Compiled into a Policy (core/policy.h).
struct PolicySettings {
  AclSettings acl;                              // server-wide, at accept
  std::vector<ServicePolicySettings> services;  // by ServiceSettings::index
  std::vector<std::optional<TlsSettings>> tls;  // by listener; empty optional = plain ws
  // trusted_proxies: peers whose X-Forwarded-For / Forwarded name the client (rules allow,
  // fallback deny); unset: no peer is trusted.
  AclSettings trustedProxies;
};

struct Settings {
  uint32_t workers = 1;
  std::vector<ListenerSettings> listeners;
  uint64_t maxMessageSize = 16 << 20;
  uint32_t maxHeaderBytes = 8192;
  uint32_t maxHeaders = 64;
  uint32_t handshakeTimeoutMs = 10000;
  uint32_t idleTimeoutMs = 0;
  uint32_t pingIntervalMs = 0;
  uint32_t closeTimeoutMs = 5000;
  // On stop: how long handlers in progress get to finish before their connections are
  // closed anyway (Worker::beginStop).
  uint32_t drainTimeoutMs = 10000;
  uint64_t outboundHighWaterMark = 4 << 20;
  // A connection whose queue stays above the mark, or whose blocked queue takes no byte, for
  // this long is a slow consumer. 0 = never judged by time (only by maxOutboundQueue).
  uint32_t slowConsumerTimeoutMs = 30000;
  uint64_t maxOutboundQueue = 16 << 20;  // already over it when queueing: slow consumer at once
  uint32_t autoFragmentSize = 0;
  uint64_t mqrMaxBytes = 64 << 20;   // byte bound of each mqr queue (and the most one may ask)
  uint64_t maxFrameSize = 0;         // 0 = maxMessageSize
  uint32_t maxFragments = 0;         // 0 = no limit
  uint32_t maxConnections = 0;       // 0 = no limit
  uint32_t maxConnectionsPerIp = 0;  // 0 = no limit
  uint32_t newConnectionsPerIpPerSec = 0;  // 0 = no limit
  // A proxy_protocol listener's connection must send its PROXY header within this time.
  uint32_t proxyProtocolTimeoutMs = 5000;
  // One log line per handshake outcome (core/access-log.h).
  bool accessLog = false;
  std::vector<ServiceSettings> services;
  PolicySettings policy;
};

}  // namespace lapps
