#include "client/tls-context.h"

#include <openssl/err.h>

#include "base/text.h"

namespace lapps {

SslCtxPtr makeClientTlsContext(const TlsContextOptions& opts, std::string& err) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    err = takeSslError("SSL_CTX_new failed");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // A missing system store is not an error: caFile may be all the caller trusts.
  SSL_CTX_set_default_verify_paths(ctx.get());
  ERR_clear_error();
  if (!opts.caFile.empty() &&
      SSL_CTX_load_verify_locations(ctx.get(), opts.caFile.c_str(), nullptr) != 1) {
    err = concatText({"cannot load CA file ", opts.caFile, ": ", takeSslError("unknown error")});
    return nullptr;
  }
  SSL_CTX_set_verify(ctx.get(), opts.verifyPeer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  // Many servers drop TCP without close_notify; the WebSocket close handshake (or the
  // application protocol over TcpClient) is what detects truncation.
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
  return ctx;
}

std::string takeSslError(const char* fallback) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return fallback;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace lapps
