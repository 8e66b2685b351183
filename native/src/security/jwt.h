// JSON Web Tokens (RFC 7519) in the JWS compact form (RFC 7515): verify and sign over
// OpenSSL, with no I/O and no Lua (lua/api-jwt.cc is the binding; docs/lua-api.md the
// contract). Every refusal is a string that starts with one of the reasons below, so a
// caller can match the start and show the rest:
//   "malformed"              not a well-formed token (size, parts, base64url, JSON, claim types)
//   "algorithm not allowed"  alg is "none", unknown, not in the allowed list, or not one the key
//   serves "bad key"                the key could not be read or cannot be used (sign: no private
//   key) "bad signature"          the signature does not verify "expired"                exp has
//   passed (leeway included) "not yet valid"          nbf, or iat, is in the future (leeway
//   included) "audience mismatch"      aud does not name an expected audience, or was not expected
//   "issuer mismatch"        iss is not the expected issuer
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "security/jwt-key.h"

namespace lapps::jwt {

// A longer token is refused before anything is decoded.
inline constexpr size_t kMaxTokenBytes = 64 * 1024;

struct VerifyOptions {
  std::vector<Alg> algorithms;         // required: an empty list allows nothing
  double leeway = 0;                   // seconds of clock skew allowed for exp, nbf and iat
  std::optional<double> now;           // seconds since the epoch; the system clock when absent
  std::vector<std::string> audiences;  // any one must be in aud; empty: aud must be absent
  std::optional<std::string> issuer;   // iss must equal it
};

struct Verified {
  Alg alg;
  std::string header;   // the JOSE header's JSON text
  std::string payload;  // the claims' JSON text (an object)
};

bool verify(std::string_view token, const Key& key, const VerifyOptions& options, Verified& out,
            std::string& err);

// claimsJson must be a JSON object; the header is {"alg":"<alg>","typ":"JWT"}.
bool sign(std::string_view claimsJson, const Key& key, Alg alg, std::string& token,
          std::string& err);

// The JWS signature step alone, over the signing input ("<header>.<payload>", encoded):
// raw signature bytes (ECDSA as r || s, RFC 7518 3.4).
bool signInput(Alg alg, const Key& key, std::string_view input, std::string& signature,
               std::string& err);
bool verifyInput(Alg alg, const Key& key, std::string_view input, std::string_view signature);

}  // namespace lapps::jwt
