// The JWS algorithms lapps.jwt knows (RFC 7518 section 3, RFC 8037) and the keys they use:
// a shared secret (HMAC), or an OpenSSL public or private key read from PEM or a JWK
// (RFC 7517). A key knows which algorithms it may serve, so a token cannot choose an
// algorithm its verifier's key was not meant for ("algorithm confusion").
#pragma once

#include <string>
#include <string_view>

#include "security/openssl-ptr.h"

namespace lapps::jwt {

enum class Alg { kHS256, kHS384, kHS512, kRS256, kRS384, kRS512, kPS256, kES256, kES384, kEdDSA };

// "HS256" etc.; false for anything else, "none" included.
bool algFromName(std::string_view name, Alg& out);
const char* algName(Alg alg);
inline bool isHmac(Alg a) {
  return a == Alg::kHS256 || a == Alg::kHS384 || a == Alg::kHS512;
}

class Key {
 public:
  enum class Kind { kNone, kSecret, kRsa, kEcP256, kEcP384, kEd25519 };

  // Text that begins with "-----BEGIN" is PEM, text whose first non-blank character is '{'
  // is a JWK, anything else is an HMAC secret (its bytes, as given).
  static bool parse(std::string_view text, Key& out, std::string& err);
  static bool fromSecret(std::string_view secret, Key& out, std::string& err);
  // A PUBLIC KEY (SubjectPublicKeyInfo), a CERTIFICATE (its public key) or an unencrypted
  // PRIVATE KEY (PKCS#8, or the traditional RSA / EC forms).
  static bool fromPem(std::string_view pem, Key& out, std::string& err);
  // kty "oct" (k), "RSA" (n, e; d to sign), "EC" (crv P-256 / P-384, x, y; d to sign),
  // "OKP" (crv Ed25519, x; d to sign). "use" other than "sig" is refused; "alg", when
  // present, is the only algorithm the key serves.
  static bool fromJwk(std::string_view json, Key& out, std::string& err);

  Kind kind() const { return kind_; }
  bool hasPrivate() const { return private_; }
  const std::string& secret() const { return secret_; }
  EVP_PKEY* pkey() const { return pkey_.get(); }
  // Empty when the key may serve `alg`, else why not (a sentence without a prefix).
  std::string refuses(Alg alg) const;

 private:
  bool adopt(EvpPkeyPtr pkey, bool isPrivate, std::string& err);

  Kind kind_ = Kind::kNone;
  bool private_ = false;
  std::string secret_;
  EvpPkeyPtr pkey_;
  std::string pinnedAlg_;
};

}  // namespace lapps::jwt
