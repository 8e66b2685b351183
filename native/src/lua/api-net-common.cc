#include "lua/api-net-common.h"

#include <map>
#include <utility>

namespace lapps::net {

namespace {

// TLS client contexts of one instance, by (verify, CA file).
class TlsContexts final : public InstanceResource {
 public:
  SSL_CTX* get(bool verify, const std::string& ca, std::string& err) {
    auto key = std::make_pair(verify, ca);
    auto it = ctx_.find(key);
    if (it != ctx_.end()) return it->second.get();
    SslCtxPtr ctx = makeClientTlsContext(TlsContextOptions{verify, ca}, err);
    if (!ctx) return nullptr;
    return (ctx_[key] = std::move(ctx)).get();
  }

 private:
  std::map<std::pair<bool, std::string>, SslCtxPtr> ctx_;
};

}  // namespace

bool tlsFromOptions(lua_State* L, int idx, LuaInstance* inst, TlsOptions& tls, std::string& err) {
  bool verify = true;
  std::string ca;
  if (lua_istable(L, idx)) {
    lua_getfield(L, idx, "verify");
    if (!lua_isnil(L, -1)) verify = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, idx, "ca");
    if (lua_isstring(L, -1)) ca = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  tls.ctx = perInstance<TlsContexts>(inst, "lapps.tls")->get(verify, ca, err);
  return tls.ctx != nullptr;
}

}  // namespace lapps::net
