// The reloadable part of the server's behaviour, compiled: ACLs, Origin policies and TLS
// contexts. Immutable once built. Each worker holds its own shared_ptr and reads it without
// locks; a reload builds a new Policy and posts it to every worker, and the old one is freed
// when the last worker (or the last connection in a TLS handshake) lets go of it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/settings.h"
#include "security/acl.h"
#include "security/origin.h"
#include "security/tls-server.h"

namespace lapps {

struct ServicePolicy {
  std::shared_ptr<const Acl> acl;  // null: everyone
  OriginPolicy origin;
};

struct Policy {
  std::shared_ptr<const Acl> acl;                      // server-wide; null: everyone
  std::vector<ServicePolicy> services;                 // by ServiceSettings::index
  std::vector<std::shared_ptr<TlsServerContext>> tls;  // by listener; null: plain ws
  std::shared_ptr<const Acl> trustedProxies;           // null: no peer is trusted

  // Errors name the part: "acl: entry 2 (...)", "service chat: origin ...",
  // "listener 1 (tls): <file>: ...".
  static std::shared_ptr<const Policy> compile(const PolicySettings& settings,
                                               const std::vector<ServiceSettings>& services,
                                               std::string& error);
};

}  // namespace lapps
