#include "core/policy.h"

namespace lapps {

namespace {

bool compileAcl(const AclSettings& s, std::shared_ptr<const Acl>& out, std::string& error) {
  out.reset();
  if (!s.set) return true;
  out = Acl::compile(s.rules, s.fallback, error);
  return out != nullptr;
}

}  // namespace

std::shared_ptr<const Policy> Policy::compile(const PolicySettings& settings,
                                              const std::vector<ServiceSettings>& services,
                                              std::string& error) {
  auto p = std::make_shared<Policy>();
  std::string why;
  if (!compileAcl(settings.acl, p->acl, why)) {
    error = "acl: " + why;
    return nullptr;
  }
  if (!compileAcl(settings.trustedProxies, p->trustedProxies, why)) {
    error = "trusted_proxies: " + why;
    return nullptr;
  }
  p->services.resize(services.size());
  for (const ServiceSettings& svc : services) {
    if (svc.index >= settings.services.size()) continue;  // no policy given: defaults
    const ServicePolicySettings& s = settings.services[svc.index];
    ServicePolicy& sp = p->services[svc.index];
    if (!compileAcl(s.acl, sp.acl, why)) {
      error = "service " + svc.name + ": acl: " + why;
      return nullptr;
    }
    const bool ok = s.originsSet
                        ? OriginPolicy::fromList(s.origins, s.allowMissingOrigin, sp.origin, why)
                        : OriginPolicy::fromList(s.extraOrigins, s.allowMissingOrigin, sp.origin,
                                                 why, /*alsoSameOrigin=*/true);
    if (!ok) {
      error = "service " + svc.name + ": " + why;
      return nullptr;
    }
  }
  p->tls.resize(settings.tls.size());
  for (size_t i = 0; i < settings.tls.size(); ++i) {
    if (!settings.tls[i]) continue;
    p->tls[i] = TlsServerContext::create(*settings.tls[i], why);
    if (!p->tls[i]) {
      error = "listener " + std::to_string(i) + " (tls): " + why;
      return nullptr;
    }
  }
  return p;
}

}  // namespace lapps
