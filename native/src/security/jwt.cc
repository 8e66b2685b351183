#include "security/jwt.h"

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <chrono>
#include <memory>

#include "security/base64url.h"
#include "security/jwt-json.h"

namespace lapps::jwt {

namespace {

struct ErrorQueueGuard {
  ~ErrorQueueGuard() { ERR_clear_error(); }
};

using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpensslFree<EVP_MD_CTX, EVP_MD_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OpensslFree<ECDSA_SIG, ECDSA_SIG_free>>;

const EVP_MD* digestOf(Alg alg) {
  switch (alg) {
    case Alg::kHS256:
    case Alg::kRS256:
    case Alg::kPS256:
    case Alg::kES256:
      return EVP_sha256();
    case Alg::kHS384:
    case Alg::kRS384:
    case Alg::kES384:
      return EVP_sha384();
    case Alg::kHS512:
    case Alg::kRS512:
      return EVP_sha512();
    case Alg::kEdDSA:
      return nullptr;  // Ed25519 hashes internally
  }
  return nullptr;
}

size_t ecCoordinateSize(Alg alg) {
  return alg == Alg::kES256 ? 32 : 48;
}
bool isEc(Alg alg) {
  return alg == Alg::kES256 || alg == Alg::kES384;
}

bool hmac(Alg alg, const Key& key, std::string_view input, unsigned char* out, unsigned& len) {
  return HMAC(digestOf(alg), key.secret().data(), static_cast<int>(key.secret().size()),
              reinterpret_cast<const unsigned char*>(input.data()), input.size(), out,
              &len) != nullptr;
}

// Sets up ctx to sign or verify with alg's digest and, for PS256, PSS padding (salt as
// long as the hash, MGF1 with the same hash: RFC 7518 3.5).
bool initPkeyCtx(EVP_MD_CTX* ctx, Alg alg, const Key& key, bool forSigning) {
  EVP_PKEY_CTX* pctx = nullptr;
  int rc = forSigning ? EVP_DigestSignInit(ctx, &pctx, digestOf(alg), nullptr, key.pkey())
                      : EVP_DigestVerifyInit(ctx, &pctx, digestOf(alg), nullptr, key.pkey());
  if (rc <= 0) return false;
  if (alg == Alg::kPS256) {
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, digestOf(alg)) > 0;
  }
  return true;
}

// r || s (fixed width each) -> the DER ECDSA-Sig-Value OpenSSL verifies.
bool rawToDer(std::string_view raw, size_t n, std::string& der) {
  if (raw.size() != 2 * n) return false;
  EcdsaSigPtr sig(ECDSA_SIG_new());
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(p, static_cast<int>(n), nullptr);
  BIGNUM* s = BN_bin2bn(p + n, static_cast<int>(n), nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return false;
  der.resize(static_cast<size_t>(len));
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  return i2d_ECDSA_SIG(sig.get(), &out) == len;
}

bool derToRaw(const unsigned char* der, size_t len, size_t n, std::string& raw) {
  const unsigned char* p = der;
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
  if (!sig) return false;
  raw.assign(2 * n, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  return BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, static_cast<int>(n)) ==
             static_cast<int>(n) &&
         BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + n, static_cast<int>(n)) ==
             static_cast<int>(n);
}

// The algorithm name as it may appear in a message: short and printable.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 32)) out += (c >= 0x20 && c < 0x7F) ? c : '?';
  return out;
}

double systemNow() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// The registered claims (RFC 7519 4.1) the options ask about.
bool checkClaims(const JsonValue& claims, const VerifyOptions& o, std::string& err) {
  const double now = o.now ? *o.now : systemNow();
  for (const char* name : {"exp", "nbf", "iat"}) {
    const JsonValue* v = claims.get(name);
    if (v && !v->isNumber()) {
      err = std::string("malformed: claim \"") + name + "\" is not a number";
      return false;
    }
  }
  if (const JsonValue* exp = claims.get("exp"); exp && now >= exp->number + o.leeway) {
    err = "expired";
    return false;
  }
  if (const JsonValue* nbf = claims.get("nbf"); nbf && now + o.leeway < nbf->number) {
    err = "not yet valid";
    return false;
  }
  if (const JsonValue* iat = claims.get("iat"); iat && now + o.leeway < iat->number) {
    err = "not yet valid: issued in the future (iat)";
    return false;
  }
  if (o.issuer) {
    const JsonValue* iss = claims.get("iss");
    if (!iss || !iss->isString() || iss->str != *o.issuer) {
      err = "issuer mismatch";
      return false;
    }
  }
  const JsonValue* aud = claims.get("aud");
  if (!aud) {
    if (o.audiences.empty()) return true;
    err = "audience mismatch: the token has no aud";
    return false;
  }
  // RFC 7519 4.1.3: a token meant for named audiences is refused by a verifier that does
  // not say which audience it is.
  if (o.audiences.empty()) {
    err = "audience mismatch: the token has an aud and options.aud is not set";
    return false;
  }
  std::vector<const JsonValue*> names;
  if (aud->isString()) {
    names.push_back(aud);
  } else if (aud->type == JsonValue::Type::kArray) {
    for (const JsonValue& v : aud->items) {
      if (!v.isString()) {
        err = "malformed: claim \"aud\" is not a string or an array of strings";
        return false;
      }
      names.push_back(&v);
    }
  } else {
    err = "malformed: claim \"aud\" is not a string or an array of strings";
    return false;
  }
  for (const JsonValue* n : names) {
    for (const std::string& want : o.audiences) {
      if (n->str == want) return true;
    }
  }
  err = "audience mismatch";
  return false;
}

}  // namespace

bool signInput(Alg alg, const Key& key, std::string_view input, std::string& signature,
               std::string& err) {
  ErrorQueueGuard clear;
  if (std::string why = key.refuses(alg); !why.empty()) {
    err = "algorithm not allowed: " + why;
    return false;
  }
  if (!key.hasPrivate()) {
    err = std::string("bad key: signing with ") + algName(alg) + " needs a private key";
    return false;
  }
  if (isHmac(alg)) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!hmac(alg, key, input, mac, len)) {
      err = "bad key: HMAC failed";
      return false;
    }
    signature.assign(reinterpret_cast<char*>(mac), len);
    return true;
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (!ctx || !initPkeyCtx(ctx.get(), alg, key, true) ||
      EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size()) <= 0) {
    err = std::string("bad key: cannot sign with ") + algName(alg);
    return false;
  }
  std::string out(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, data,
                     input.size()) <= 0) {
    err = std::string("bad key: cannot sign with ") + algName(alg);
    return false;
  }
  out.resize(len);
  if (isEc(alg)) {
    // OpenSSL writes DER; JWS wants r || s.
    if (!derToRaw(reinterpret_cast<const unsigned char*>(out.data()), out.size(),
                  ecCoordinateSize(alg), signature)) {
      err = "bad key: cannot encode the ECDSA signature";
      return false;
    }
    return true;
  }
  signature = std::move(out);
  return true;
}

bool verifyInput(Alg alg, const Key& key, std::string_view input, std::string_view signature) {
  ErrorQueueGuard clear;
  if (!key.refuses(alg).empty()) return false;
  if (isHmac(alg)) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    return hmac(alg, key, input, mac, len) && len == signature.size() &&
           CRYPTO_memcmp(mac, signature.data(), len) == 0;
  }
  std::string der;
  if (isEc(alg)) {
    if (!rawToDer(signature, ecCoordinateSize(alg), der)) return false;
    signature = der;
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  return ctx && initPkeyCtx(ctx.get(), alg, key, false) &&
         EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(input.data()),
                          input.size()) == 1;
}

bool verify(std::string_view token, const Key& key, const VerifyOptions& options, Verified& out,
            std::string& err) {
  if (token.size() > kMaxTokenBytes) {
    err = "malformed: longer than " + std::to_string(kMaxTokenBytes) + " bytes";
    return false;
  }
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    err = "malformed: not three dot-separated parts";
    return false;
  }
  std::string_view headerB64 = token.substr(0, dot1);
  std::string_view payloadB64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view signatureB64 = token.substr(dot2 + 1);
  std::string headerText, signature;
  JsonValue header;
  std::string why;
  if (!base64urlDecode(headerB64, headerText) || !parseJson(headerText, header, why) ||
      !header.isObject()) {
    err = "malformed: the header is not a base64url JSON object";
    return false;
  }
  const JsonValue* algValue = header.get("alg");
  if (!algValue || !algValue->isString()) {
    err = "malformed: the header has no alg";
    return false;
  }
  // RFC 7515 4.1.11: extensions listed in crit must be understood; lapps knows none.
  if (header.get("crit")) {
    err = "malformed: the header has crit extensions";
    return false;
  }
  Alg alg;
  if (!algFromName(algValue->str, alg)) {
    err = "algorithm not allowed: " + shown(algValue->str);
    return false;
  }
  bool allowed = false;
  for (Alg a : options.algorithms) allowed = allowed || a == alg;
  if (!allowed) {
    err = std::string("algorithm not allowed: ") + algName(alg) + " is not in options.algorithms";
    return false;
  }
  if (std::string refused = key.refuses(alg); !refused.empty()) {
    err = "algorithm not allowed: " + refused;
    return false;
  }
  if (!base64urlDecode(signatureB64, signature) || !base64urlDecode(payloadB64, out.payload)) {
    err = "malformed: bad base64url";
    return false;
  }
  if (!verifyInput(alg, key, token.substr(0, dot2), signature)) {
    err = "bad signature";
    return false;
  }
  // Only a signed payload is parsed.
  JsonValue claims;
  if (!parseJson(out.payload, claims, why) || !claims.isObject()) {
    err = "malformed: the payload is not a JSON object";
    return false;
  }
  if (!checkClaims(claims, options, err)) return false;
  out.alg = alg;
  out.header = std::move(headerText);
  return true;
}

bool sign(std::string_view claimsJson, const Key& key, Alg alg, std::string& token,
          std::string& err) {
  JsonValue claims;
  std::string why;
  if (!parseJson(claimsJson, claims, why) || !claims.isObject()) {
    err = "malformed: the claims are not a JSON object";
    return false;
  }
  std::string input =
      base64urlEncode(std::string("{\"alg\":\"") + algName(alg) + "\",\"typ\":\"JWT\"}") + "." +
      base64urlEncode(claimsJson);
  std::string signature;
  if (!signInput(alg, key, input, signature, err)) return false;
  token = input + "." + base64urlEncode(signature);
  // What verify would refuse is not made.
  if (token.size() > kMaxTokenBytes) {
    err = "malformed: the token would be longer than " + std::to_string(kMaxTokenBytes) + " bytes";
    return false;
  }
  return true;
}

}  // namespace lapps::jwt
