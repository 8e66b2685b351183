#include "security/jwt-key.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <memory>

#include "security/base64url.h"
#include "security/jwt-json.h"

namespace lapps::jwt {

namespace {

struct Named {
  const char* name;
  Alg alg;
};
constexpr Named kAlgs[] = {{"HS256", Alg::kHS256}, {"HS384", Alg::kHS384}, {"HS512", Alg::kHS512},
                           {"RS256", Alg::kRS256}, {"RS384", Alg::kRS384}, {"RS512", Alg::kRS512},
                           {"PS256", Alg::kPS256}, {"ES256", Alg::kES256}, {"ES384", Alg::kES384},
                           {"EdDSA", Alg::kEdDSA}};

// OpenSSL leaves its reasons on a per-thread queue; a failed parse here must not leave
// them for the TLS code that runs next on the same worker thread.
struct ErrorQueueGuard {
  ~ErrorQueueGuard() { ERR_clear_error(); }
};

// Never prompt for a passphrase: an encrypted private key simply fails to load.
int noPassphrase(char*, int, int, void*) {
  return -1;
}

using BnPtr = std::unique_ptr<BIGNUM, OpensslFree<BIGNUM, BN_free>>;
using ParamBldPtr =
    std::unique_ptr<OSSL_PARAM_BLD, OpensslFree<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, OpensslFree<OSSL_PARAM, OSSL_PARAM_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpensslFree<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;

// Reads member `name` of the JWK as base64url bytes; false with err when it is absent
// (and required) or not strict base64url.
bool jwkBytes(const JsonValue& jwk, const char* name, bool required, std::string& out,
              std::string& err) {
  const JsonValue* v = jwk.get(name);
  if (!v) {
    if (required) err = std::string("bad key: JWK member \"") + name + "\" missing";
    return !required;
  }
  if (!v->isString() || v->str.empty() || !base64urlDecode(v->str, out)) {
    err = std::string("bad key: JWK member \"") + name + "\" is not base64url";
    return false;
  }
  return true;
}

BnPtr bignum(const std::string& bytes) {
  return BnPtr(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                         static_cast<int>(bytes.size()), nullptr));
}

EvpPkeyPtr fromParams(const char* type, OSSL_PARAM_BLD* bld, bool isPrivate) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, isPrivate ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                        params.get()) <= 0) {
    return nullptr;
  }
  return EvpPkeyPtr(pkey);
}

EvpPkeyPtr rsaJwk(const JsonValue& jwk, bool& isPrivate, std::string& err) {
  std::string n, e, d;
  if (!jwkBytes(jwk, "n", true, n, err) || !jwkBytes(jwk, "e", true, e, err) ||
      !jwkBytes(jwk, "d", false, d, err)) {
    return nullptr;
  }
  isPrivate = !d.empty();
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  BnPtr bn = bignum(n), be = bignum(e), bd = isPrivate ? bignum(d) : nullptr;
  if (!bld || !bn || !be || (isPrivate && !bd)) return nullptr;
  OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn.get());
  OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, be.get());
  if (isPrivate) OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_D, bd.get());
  return fromParams("RSA", bld.get(), isPrivate);
}

EvpPkeyPtr ecJwk(const JsonValue& jwk, const std::string& crv, bool& isPrivate, std::string& err) {
  const char* group;
  size_t size;
  if (crv == "P-256") {
    group = "prime256v1";
    size = 32;
  } else if (crv == "P-384") {
    group = "secp384r1";
    size = 48;
  } else {
    err = "bad key: EC curve \"" + crv + "\" not supported (P-256, P-384)";
    return nullptr;
  }
  std::string x, y, d;
  if (!jwkBytes(jwk, "x", true, x, err) || !jwkBytes(jwk, "y", true, y, err) ||
      !jwkBytes(jwk, "d", false, d, err)) {
    return nullptr;
  }
  if (x.size() != size || y.size() != size || (!d.empty() && d.size() != size)) {
    err = "bad key: EC coordinates of the wrong length for " + crv;
    return nullptr;
  }
  isPrivate = !d.empty();
  std::string point = "\x04" + x + y;  // uncompressed (SEC 1, 2.3.3)
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  BnPtr bd = isPrivate ? bignum(d) : nullptr;
  if (!bld || (isPrivate && !bd)) return nullptr;
  OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
  OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  if (isPrivate) OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, bd.get());
  // Importing the point checks that it is on the curve.
  EvpPkeyPtr pkey = fromParams("EC", bld.get(), isPrivate);
  if (!pkey) err = "bad key: the EC point is not on " + crv;
  return pkey;
}

EvpPkeyPtr okpJwk(const JsonValue& jwk, const std::string& crv, bool& isPrivate, std::string& err) {
  if (crv != "Ed25519") {
    err = "bad key: OKP curve \"" + crv + "\" not supported (Ed25519)";
    return nullptr;
  }
  std::string x, d;
  if (!jwkBytes(jwk, "x", true, x, err) || !jwkBytes(jwk, "d", false, d, err)) return nullptr;
  if (x.size() != 32 || (!d.empty() && d.size() != 32)) {
    err = "bad key: Ed25519 keys are 32 bytes";
    return nullptr;
  }
  isPrivate = !d.empty();
  const auto* raw = reinterpret_cast<const unsigned char*>(isPrivate ? d.data() : x.data());
  EvpPkeyPtr pkey(isPrivate ? EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, raw, 32)
                            : EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw, 32));
  if (pkey && isPrivate) {
    // d determines x: a JWK whose halves disagree would sign what its x cannot verify.
    unsigned char pub[32];
    size_t len = sizeof pub;
    if (EVP_PKEY_get_raw_public_key(pkey.get(), pub, &len) <= 0 || len != 32 ||
        std::string_view(reinterpret_cast<char*>(pub), 32) != x) {
      err = "bad key: the Ed25519 JWK's x does not match its d";
      return nullptr;
    }
  }
  return pkey;
}

}  // namespace

bool algFromName(std::string_view name, Alg& out) {
  for (const Named& n : kAlgs) {
    if (name == n.name) {
      out = n.alg;
      return true;
    }
  }
  return false;
}

const char* algName(Alg alg) {
  for (const Named& n : kAlgs) {
    if (n.alg == alg) return n.name;
  }
  return "?";
}

bool Key::parse(std::string_view text, Key& out, std::string& err) {
  if (text.substr(0, 10) == "-----BEGIN") return fromPem(text, out, err);
  size_t i = text.find_first_not_of(" \t\r\n");
  if (i != std::string_view::npos && text[i] == '{') return fromJwk(text, out, err);
  return fromSecret(text, out, err);
}

bool Key::fromSecret(std::string_view secret, Key& out, std::string& err) {
  if (secret.empty()) {
    err = "bad key: the secret is empty";
    return false;
  }
  out = Key{};
  out.kind_ = Kind::kSecret;
  out.private_ = true;
  out.secret_.assign(secret);
  return true;
}

bool Key::adopt(EvpPkeyPtr pkey, bool isPrivate, std::string& err) {
  switch (EVP_PKEY_get_base_id(pkey.get())) {
    case EVP_PKEY_RSA:
      kind_ = Kind::kRsa;
      break;
    case EVP_PKEY_ED25519:
      kind_ = Kind::kEd25519;
      break;
    case EVP_PKEY_EC: {
      char group[64];
      size_t len = 0;
      if (EVP_PKEY_get_group_name(pkey.get(), group, sizeof group, &len) <= 0) len = 0;
      std::string_view g(group, len);
      if (g == "prime256v1") {
        kind_ = Kind::kEcP256;
      } else if (g == "secp384r1") {
        kind_ = Kind::kEcP384;
      } else {
        err = "bad key: EC curve not supported (P-256, P-384)";
        return false;
      }
      break;
    }
    default:
      err = "bad key: key type not supported (RSA, EC P-256 / P-384, Ed25519)";
      return false;
  }
  pkey_ = std::move(pkey);
  private_ = isPrivate;
  return true;
}

bool Key::fromPem(std::string_view pem, Key& out, std::string& err) {
  ErrorQueueGuard clear;
  out = Key{};
  // The label says what the PEM holds: "-----BEGIN <label>-----".
  size_t end = pem.find("-----", 10);
  std::string_view label =
      end == std::string_view::npos ? std::string_view() : pem.substr(11, end - 11);
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) {
    err = "bad key: out of memory";
    return false;
  }
  EvpPkeyPtr pkey;
  bool isPrivate = false;
  if (label == "PUBLIC KEY") {
    pkey.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, noPassphrase, nullptr));
  } else if (label == "CERTIFICATE") {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, noPassphrase, nullptr));
    if (cert) pkey.reset(X509_get_pubkey(cert.get()));
  } else if (label == "PRIVATE KEY" || label == "RSA PRIVATE KEY" || label == "EC PRIVATE KEY") {
    pkey.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr));
    isPrivate = true;
  } else {
    err = "bad key: PEM \"" + std::string(label.substr(0, 40)) +
          "\" not supported (PUBLIC KEY, CERTIFICATE, PRIVATE KEY)";
    return false;
  }
  if (!pkey) {
    err = "bad key: cannot read the PEM " + std::string(label);
    return false;
  }
  return out.adopt(std::move(pkey), isPrivate, err);
}

bool Key::fromJwk(std::string_view json, Key& out, std::string& err) {
  ErrorQueueGuard clear;
  out = Key{};
  JsonValue jwk;
  std::string why;
  if (!parseJson(json, jwk, why) || !jwk.isObject()) {
    err = "bad key: the JWK is not a JSON object" + (why.empty() ? "" : " (" + why + ")");
    return false;
  }
  const JsonValue* kty = jwk.get("kty");
  if (!kty || !kty->isString()) {
    err = "bad key: JWK without \"kty\"";
    return false;
  }
  if (const JsonValue* use = jwk.get("use"); use && !(use->isString() && use->str == "sig")) {
    err = "bad key: JWK \"use\" is not \"sig\"";
    return false;
  }
  std::string pinned;
  if (const JsonValue* alg = jwk.get("alg")) {
    Alg a;
    if (!alg->isString() || !algFromName(alg->str, a)) {
      err = "bad key: JWK \"alg\" is not an algorithm lapps.jwt supports";
      return false;
    }
    pinned = alg->str;
  }
  const JsonValue* crvValue = jwk.get("crv");
  std::string crv = crvValue && crvValue->isString() ? crvValue->str : "";
  bool isPrivate = false;
  EvpPkeyPtr pkey;
  if (kty->str == "oct") {
    std::string k;
    if (!jwkBytes(jwk, "k", true, k, err) || !fromSecret(k, out, err)) return false;
    out.pinnedAlg_ = pinned;
    return true;
  } else if (kty->str == "RSA") {
    pkey = rsaJwk(jwk, isPrivate, err);
  } else if (kty->str == "EC") {
    pkey = ecJwk(jwk, crv, isPrivate, err);
  } else if (kty->str == "OKP") {
    pkey = okpJwk(jwk, crv, isPrivate, err);
  } else {
    err = "bad key: JWK kty \"" + kty->str.substr(0, 20) + "\" not supported";
    return false;
  }
  if (!pkey) {
    if (err.empty()) err = "bad key: the JWK does not make a valid " + kty->str + " key";
    return false;
  }
  if (!out.adopt(std::move(pkey), isPrivate, err)) return false;
  out.pinnedAlg_ = pinned;
  return true;
}

std::string Key::refuses(Alg alg) const {
  const char* name = algName(alg);
  if (!pinnedAlg_.empty() && pinnedAlg_ != name) {
    return std::string(name) + " with a JWK whose alg is " + pinnedAlg_;
  }
  switch (alg) {
    case Alg::kHS256:
    case Alg::kHS384:
    case Alg::kHS512: {
      if (kind_ != Kind::kSecret) return std::string(name) + " needs a secret, not a public key";
      // RFC 7518 3.2: a key at least as long as the hash output.
      size_t need = alg == Alg::kHS256 ? 32 : alg == Alg::kHS384 ? 48 : 64;
      if (secret_.size() < need) {
        return std::string(name) + " needs a secret of at least " + std::to_string(need) + " bytes";
      }
      return "";
    }
    case Alg::kRS256:
    case Alg::kRS384:
    case Alg::kRS512:
    case Alg::kPS256:
      if (kind_ != Kind::kRsa) return std::string(name) + " needs an RSA key";
      // RFC 7518 3.3: 2048 bits or more.
      if (EVP_PKEY_get_bits(pkey_.get()) < 2048) {
        return std::string(name) + " needs an RSA key of at least 2048 bits";
      }
      return "";
    case Alg::kES256:
      return kind_ == Kind::kEcP256 ? "" : "ES256 needs an EC P-256 key";
    case Alg::kES384:
      return kind_ == Kind::kEcP384 ? "" : "ES384 needs an EC P-384 key";
    case Alg::kEdDSA:
      return kind_ == Kind::kEd25519 ? "" : "EdDSA needs an Ed25519 key";
  }
  return "unknown algorithm";
}

}  // namespace lapps::jwt
