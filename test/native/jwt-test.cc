// lapps.jwt's core (security/jwt.h): the RFC 7515 / RFC 8037 examples with their published
// keys, then every way a token is refused: alg "none", HMAC keyed with an RSA public key,
// wrong key, time claims, aud / iss, bad base64url, truncation and the size bound.
#include <openssl/pem.h>

#include "security/base64url.h"
#include "security/jwt-json.h"
#include "security/jwt.h"
#include "test.h"

using namespace lapps;
using namespace lapps::jwt;

namespace {

// RFC 7515 appendix A: the payload all four examples sign (with its CR LFs), exp 1300819380.
const char* kPayloadB64 =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
    "cnVlfQ";
const double kBeforeExp = 1300819000;

const char* kA1Jwk =
    R"({"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"})";
const char* kA1Token =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogI"
    "mh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

const char* kA2Jwk =
    R"({"kty":"RSA","e":"AQAB","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"})";
const char* kA2Signature =
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2F"
    "p5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQB"
    "MHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeY"
    "I2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

const char* kA3Public =
    R"({"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})";
const char* kA3Private =
    R"({"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"})";
const char* kA3Signature =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

// RFC 8037 appendix A.1 / A.4.
const char* kEdPublic =
    R"({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})";
const char* kEdPrivate =
    R"({"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})";
const char* kEdInput = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
const char* kEdSignature =
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

const std::string kSecret = "a secret of at least thirty-two bytes, for HS256";

Key key(const std::string& text) {
  Key k;
  std::string err;
  if (!Key::parse(text, k, err)) FAIL("key: " + err);
  return k;
}

VerifyOptions allow(std::vector<Alg> algs, double now = kBeforeExp) {
  VerifyOptions o;
  o.algorithms = std::move(algs);
  o.now = now;
  return o;
}

// verify() and its error ("" when it verified).
std::string refusal(const std::string& token, const Key& k, const VerifyOptions& o) {
  Verified v;
  std::string err;
  return verify(token, k, o, v, err) ? "" : err;
}

bool startsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string signed_(const std::string& claims, const Key& k, Alg alg) {
  std::string token, err;
  if (!sign(claims, k, alg, token, err)) FAIL("sign: " + err);
  return token;
}

std::string hs256Token(const std::string& claims) {
  return signed_(claims, key(kSecret), Alg::kHS256);
}

std::string pemOf(EVP_PKEY* pkey, bool isPrivate) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (isPrivate) {
    PEM_write_bio_PrivateKey(bio.get(), pkey, nullptr, nullptr, 0, nullptr, nullptr);
  } else {
    PEM_write_bio_PUBKEY(bio.get(), pkey);
  }
  char* data;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

TEST("jwt: base64url is strict and round-trips") {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    std::string back;
    CHECK(base64urlDecode(base64urlEncode(s), back));
    CHECK_EQ(back, s);
  }
  std::string out;
  CHECK_EQ(base64urlEncode("\xfb\xff"), "-_8");
  for (const char* bad : {"Zm9v=", "Zm+v", "Zm/v", "Zm9 v", "Z", "Zh", "Zm9vY", "Zm9\n"}) {
    out.clear();
    CHECK(!base64urlDecode(bad, out));
  }
}

TEST("jwt: the JSON reader is strict and refuses repeated names") {
  JsonValue v;
  std::string err;
  REQUIRE(parseJson(R"({"a":[1,2.5e3,-0,"x\u00e9\ud83d\ude00"],"b":{"c":null,"d":true}})", v, err));
  CHECK_EQ(v.get("a")->items[1].number, 2500.0);
  CHECK_EQ(v.get("a")->items[3].str, "x\xc3\xa9\xf0\x9f\x98\x80");
  for (const char* bad : {R"({"a":1,"a":2})", "{\"a\":1,}", "[01]", "{'a':1}", "\"\\ud800\"",
                          "\"\xff\"", "1 2", "[1e]", "{\"a\" 1}", "nul", "\"a\x01\""}) {
    CHECK(!parseJson(bad, v, err));
  }
  std::string deep(40, '[');
  CHECK(!parseJson(deep + std::string(40, ']'), v, err));
}

TEST("jwt: RFC 7515 A.1 HS256 example") {
  Key k = key(kA1Jwk);
  Verified v;
  std::string err;
  REQUIRE(verify(kA1Token, k, allow({Alg::kHS256}), v, err));
  CHECK_EQ(v.payload,
           "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n "
           "\"http://example.com/is_root\":true}");
  CHECK(v.alg == Alg::kHS256);
  // The published signature is what signInput makes.
  std::string input(kA1Token, std::string(kA1Token).rfind('.'));
  std::string sig;
  REQUIRE(signInput(Alg::kHS256, k, input, sig, err));
  CHECK_EQ(base64urlEncode(sig), "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
  // Its exp is in 2011.
  VerifyOptions now = allow({Alg::kHS256});
  now.now.reset();
  CHECK_EQ(refusal(kA1Token, k, now), "expired");
}

TEST("jwt: RFC 7515 A.2 RS256 example") {
  std::string token = std::string("eyJhbGciOiJSUzI1NiJ9.") + kPayloadB64 + "." + kA2Signature;
  Key k = key(kA2Jwk);
  CHECK_EQ(refusal(token, k, allow({Alg::kRS256})), "");
  std::string tampered = token;
  tampered[tampered.size() - 10] = tampered[tampered.size() - 10] == 'A' ? 'B' : 'A';
  CHECK_EQ(refusal(tampered, k, allow({Alg::kRS256})), "bad signature");
  CHECK(startsWith(refusal(token, k, allow({Alg::kES256})), "algorithm not allowed"));
  // A public JWK cannot sign.
  std::string sig, err;
  CHECK(!signInput(Alg::kRS256, k, "x.y", sig, err));
  CHECK(startsWith(err, "bad key"));
}

TEST("jwt: RFC 7515 A.3 ES256 example (r || s signatures)") {
  std::string token = std::string("eyJhbGciOiJFUzI1NiJ9.") + kPayloadB64 + "." + kA3Signature;
  CHECK_EQ(refusal(token, key(kA3Public), allow({Alg::kES256})), "");
  CHECK_EQ(refusal(token, key(kA3Private), allow({Alg::kES256})), "");
  // ECDSA is randomised: sign with d, verify with x, y; the signature is 64 raw bytes.
  std::string mine = signed_(R"({"sub":"alice"})", key(kA3Private), Alg::kES256);
  CHECK_EQ(mine.size() - mine.rfind('.') - 1, size_t{86});
  CHECK_EQ(refusal(mine, key(kA3Public), allow({Alg::kES256})), "");
  // A DER signature (what OpenSSL writes) is not a JWS signature.
  CHECK_EQ(refusal(token.substr(0, token.rfind('.') + 1) + base64urlEncode(std::string(70, 'x')),
                   key(kA3Public), allow({Alg::kES256})),
           "bad signature");
  // A point off the curve is refused when the key is read.
  std::string offCurve = kA3Public;
  offCurve.replace(offCurve.find("x_FEz"), 5, "x_FEy");
  Key k;
  std::string err;
  CHECK(!Key::parse(offCurve, k, err));
  CHECK(startsWith(err, "bad key"));
}

TEST("jwt: RFC 8037 A.4 Ed25519 example") {
  std::string sig, err;
  std::string expected;
  REQUIRE(base64urlDecode(kEdSignature, expected));
  CHECK(verifyInput(Alg::kEdDSA, key(kEdPublic), kEdInput, expected));
  // Ed25519 is deterministic: signing reproduces the published signature.
  REQUIRE(signInput(Alg::kEdDSA, key(kEdPrivate), kEdInput, sig, err));
  CHECK_EQ(base64urlEncode(sig), kEdSignature);
  // Its payload is text, not claims: a valid JWS, not a JWT.
  std::string token = std::string(kEdInput) + "." + kEdSignature;
  CHECK_EQ(refusal(token, key(kEdPublic), allow({Alg::kEdDSA})),
           "malformed: the payload is not a JSON object");
  std::string claims = signed_(R"({"sub":"bob"})", key(kEdPrivate), Alg::kEdDSA);
  CHECK_EQ(refusal(claims, key(kEdPublic), allow({Alg::kEdDSA})), "");
  // A JWK whose x is not d's.
  std::string mismatched = kEdPrivate;
  mismatched.replace(mismatched.find("11qY"), 4, "22qY");
  Key k;
  CHECK(!Key::parse(mismatched, k, err));
}

TEST("jwt: alg none and unknown algorithms are never accepted") {
  std::string none = base64urlEncode(R"({"alg":"none"})") + "." + kPayloadB64 + ".";
  CHECK_EQ(refusal(none, key(kSecret), allow({Alg::kHS256})), "algorithm not allowed: none");
  std::string weird = base64urlEncode(R"({"alg":"HS1\u0000"})") + "." + kPayloadB64 + ".";
  CHECK_EQ(refusal(weird, key(kSecret), allow({Alg::kHS256})), "algorithm not allowed: HS1?");
  std::string token = hs256Token(R"({"a":1})");
  CHECK_EQ(refusal(token, key(kSecret), allow({Alg::kHS384, Alg::kRS256})),
           "algorithm not allowed: HS256 is not in options.algorithms");
  CHECK_EQ(refusal(token, key(kSecret), allow({})),
           "algorithm not allowed: HS256 is not in options.algorithms");
  std::string sig, err;
  CHECK(!signInput(Alg::kHS256, key("short secret"), "x.y", sig, err));
  CHECK_EQ(err, "algorithm not allowed: HS256 needs a secret of at least 32 bytes");
}

TEST("jwt: no algorithm confusion between HMAC and public keys") {
  EvpPkeyPtr rsa(EVP_RSA_gen(2048));
  REQUIRE(rsa);
  std::string pem = pemOf(rsa.get(), false);
  // The classic attack: HS256 keyed with the verifier's public key PEM text.
  Key asSecret;
  std::string err;
  REQUIRE(Key::fromSecret(pem, asSecret, err));
  std::string forged = signed_(R"({"sub":"admin"})", asSecret, Alg::kHS256);
  CHECK_EQ(refusal(forged, key(pem), allow({Alg::kHS256, Alg::kRS256})),
           "algorithm not allowed: HS256 needs a secret, not a public key");
  // And the other way: an RS256 token checked against a secret.
  std::string rs = signed_(R"({"sub":"x"})", key(pemOf(rsa.get(), true)), Alg::kRS256);
  CHECK_EQ(refusal(rs, key(pem), allow({Alg::kRS256})), "");
  CHECK_EQ(refusal(rs, key(kSecret), allow({Alg::kRS256})),
           "algorithm not allowed: RS256 needs an RSA key");
  // PS256 over the same key; and a JWK that names its alg serves only that one.
  std::string ps = signed_(R"({"sub":"x"})", key(pemOf(rsa.get(), true)), Alg::kPS256);
  CHECK_EQ(refusal(ps, key(pem), allow({Alg::kPS256})), "");
  std::string pinned = std::string(kA1Jwk).insert(1, R"("alg":"HS512",)");
  CHECK(startsWith(refusal(kA1Token, key(pinned), allow({Alg::kHS256})),
                   "algorithm not allowed: HS256 with a JWK whose alg is HS512"));
  // An EC key of the other curve is refused.
  EvpPkeyPtr p384(EVP_EC_gen("P-384"));
  std::string es384 = signed_(R"({"a":1})", key(pemOf(p384.get(), true)), Alg::kES384);
  CHECK_EQ(refusal(es384, key(pemOf(p384.get(), false)), allow({Alg::kES384})), "");
  CHECK_EQ(refusal(es384, key(kA3Public), allow({Alg::kES384})),
           "algorithm not allowed: ES384 needs an EC P-384 key");
}

TEST("jwt: wrong key, tampering and truncation") {
  std::string token = hs256Token(R"({"sub":"alice"})");
  CHECK_EQ(refusal(token, key(kSecret), allow({Alg::kHS256})), "");
  CHECK_EQ(refusal(token, key(kSecret + "!"), allow({Alg::kHS256})), "bad signature");
  std::string payload = base64urlEncode(R"({"sub":"admin"})");
  size_t d1 = token.find('.'), d2 = token.rfind('.');
  std::string swapped = token.substr(0, d1 + 1) + payload + token.substr(d2);
  CHECK_EQ(refusal(swapped, key(kSecret), allow({Alg::kHS256})), "bad signature");
  CHECK_EQ(refusal(token.substr(0, d2), key(kSecret), allow({Alg::kHS256})),
           "malformed: not three dot-separated parts");
  // 43 characters of signature: 40 are 30 whole bytes (too short), 39 leave stray bits.
  CHECK_EQ(refusal(token.substr(0, token.size() - 3), key(kSecret), allow({Alg::kHS256})),
           "bad signature");
  CHECK_EQ(refusal(token.substr(0, token.size() - 4), key(kSecret), allow({Alg::kHS256})),
           "malformed: bad base64url");
  CHECK_EQ(refusal(token + ".x", key(kSecret), allow({Alg::kHS256})),
           "malformed: not three dot-separated parts");
  CHECK_EQ(refusal("", key(kSecret), allow({Alg::kHS256})),
           "malformed: not three dot-separated parts");
  CHECK_EQ(refusal("..", key(kSecret), allow({Alg::kHS256})),
           "malformed: the header is not a base64url JSON object");
}

TEST("jwt: bad base64url anywhere is malformed") {
  std::string token = hs256Token(R"({"sub":"alice"})");
  size_t d1 = token.find('.'), d2 = token.rfind('.');
  std::string padded = token.substr(0, d1) + "=" + token.substr(d1);
  CHECK(startsWith(refusal(padded, key(kSecret), allow({Alg::kHS256})), "malformed"));
  std::string plus = token;
  plus[d1 + 3] = '+';
  CHECK_EQ(refusal(plus, key(kSecret), allow({Alg::kHS256})), "malformed: bad base64url");
  std::string sigPad = token + "=";
  CHECK_EQ(refusal(sigPad, key(kSecret), allow({Alg::kHS256})), "malformed: bad base64url");
  std::string space = token;
  space.insert(d2 + 5, " ");
  CHECK_EQ(refusal(space, key(kSecret), allow({Alg::kHS256})), "malformed: bad base64url");
}

TEST("jwt: the size bound is checked before decoding") {
  std::string token(100 * 1024, 'A');
  token[10] = '.';
  token[20] = '.';
  CHECK_EQ(refusal(token, key(kSecret), allow({Alg::kHS256})),
           "malformed: longer than 65536 bytes");
  // sign() does not make what verify() would refuse.
  std::string out, err;
  CHECK(!sign(std::string(R"({"pad":")") + std::string(60000, 'x') + "\"}", key(kSecret),
              Alg::kHS256, out, err));
  CHECK(startsWith(err, "malformed: the token would be longer"));
}

TEST("jwt: exp, nbf and iat with a leeway") {
  Key k = key(kSecret);
  std::string token = hs256Token(R"({"exp":1000,"nbf":900,"iat":800})");
  VerifyOptions o = allow({Alg::kHS256}, 950);
  CHECK_EQ(refusal(token, k, o), "");
  o.now = 1000;  // exp is the first instant it is no longer valid
  CHECK_EQ(refusal(token, k, o), "expired");
  o.leeway = 30;
  CHECK_EQ(refusal(token, k, o), "");
  o.now = 1030;
  CHECK_EQ(refusal(token, k, o), "expired");
  o.leeway = 0;
  o.now = 899;
  CHECK_EQ(refusal(token, k, o), "not yet valid");
  o.leeway = 5;
  CHECK_EQ(refusal(token, k, o), "");
  std::string future = hs256Token(R"({"iat":2000})");
  o.now = 1000;
  CHECK_EQ(refusal(future, k, o), "not yet valid: issued in the future (iat)");
  CHECK_EQ(refusal(hs256Token(R"({"exp":"soon"})"), k, o),
           "malformed: claim \"exp\" is not a number");
  // Signed claims with a repeated name are refused whole.
  std::string input = base64urlEncode(R"({"alg":"HS256"})") + "." +
                      base64urlEncode(R"({"exp":1,"exp":99999999999})");
  std::string sig, err;
  REQUIRE(signInput(Alg::kHS256, k, input, sig, err));
  CHECK_EQ(refusal(input + "." + base64urlEncode(sig), k, o),
           "malformed: the payload is not a JSON object");
  std::string crit = base64urlEncode(R"({"alg":"HS256","crit":["exp"]})") + "." + kPayloadB64;
  CHECK_EQ(refusal(crit + ".AAAA", k, o), "malformed: the header has crit extensions");
}

TEST("jwt: aud and iss") {
  Key k = key(kSecret);
  std::string one = hs256Token(R"({"aud":"chat","iss":"https://auth.example"})");
  std::string many = hs256Token(R"({"aud":["a","chat"]})");
  std::string none = hs256Token(R"({"sub":"x"})");
  VerifyOptions o = allow({Alg::kHS256});
  CHECK_EQ(refusal(none, k, o), "");
  CHECK_EQ(refusal(one, k, o),
           "audience mismatch: the token has an aud and options.aud is not set");
  o.audiences = {"chat"};
  CHECK_EQ(refusal(one, k, o), "");
  CHECK_EQ(refusal(many, k, o), "");
  CHECK_EQ(refusal(none, k, o), "audience mismatch: the token has no aud");
  o.audiences = {"other", "b"};
  CHECK_EQ(refusal(one, k, o), "audience mismatch");
  CHECK_EQ(refusal(many, k, o), "audience mismatch");
  o.audiences = {"chat"};
  o.issuer = "https://auth.example";
  CHECK_EQ(refusal(one, k, o), "");
  o.issuer = "https://evil.example";
  CHECK_EQ(refusal(one, k, o), "issuer mismatch");
  CHECK_EQ(refusal(many, k, o), "issuer mismatch");
  o.issuer.reset();
  CHECK_EQ(refusal(hs256Token(R"({"aud":[1]})"), k, o),
           "malformed: claim \"aud\" is not a string or an array of strings");
}

TEST("jwt: keys that cannot be read are bad keys") {
  Key k;
  std::string err;
  for (const char* bad :
       {"", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "-----BEGIN FOO-----\n-----END FOO-----\n", R"({"kty":"oct"})", R"({"kty":"RSA","n":"AQ"})",
        R"({"kty":"EC","crv":"P-521","x":"AA","y":"AA"})", R"({"kty":"oct","k":"a+b"})",
        R"({"kty":"oct","k":"AAAA","use":"enc"})", R"({"kty":"XYZ"})", "{not json"}) {
    err.clear();
    CHECK(!Key::parse(bad, k, err));
    CHECK(startsWith(err, "bad key"));
  }
  // A small RSA key is read, but no RSA algorithm will use it.
  EvpPkeyPtr small(EVP_RSA_gen(1024));
  REQUIRE(Key::parse(pemOf(small.get(), false), k, err));
  CHECK_EQ(k.refuses(Alg::kRS256), "RS256 needs an RSA key of at least 2048 bits");
}
