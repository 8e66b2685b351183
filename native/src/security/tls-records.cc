#include "security/tls-records.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace lapps {

namespace {

constexpr uint8_t kTypeAlert = 21;
constexpr uint8_t kTypeHandshake = 22;
constexpr uint8_t kTypeApplicationData = 23;
constexpr uint8_t kKeyUpdate = 24;  // handshake message type (RFC 8446 §4)
constexpr uint8_t kFinished = 20;

size_t hashLen(TlsSuite s) {
  return s == TlsSuite::Aes256Gcm ? 48 : 32;
}
size_t keyLen(TlsSuite s) {
  return s == TlsSuite::Aes128Gcm ? 16 : 32;
}

// The next application traffic secret (§7.2), its key and IV; the sequence restarts.
bool updateTrafficKeys(TlsSuite suite, TlsTrafficKeys& keys) {
  uint8_t next[48];
  const size_t n = hashLen(suite);
  bool ok = hkdfExpandLabel(suite, keys.secret, n, "traffic upd", nullptr, 0, next, n) &&
            deriveTrafficKeys(suite, keys, next, n);
  OPENSSL_cleanse(next, sizeof next);
  keys.seq = 0;
  return ok;
}

// A client may send only KeyUpdate after the handshake (we never ask for a certificate
// after it), whole and last in its record: a key change may not share a record with what
// follows it (§5.1), and we do not reassemble handshake messages across records.
bool onHandshake(TlsRecordState& s, const uint8_t* p, size_t n, uint8_t& alert) {
  alert = kAlertUnexpectedMessage;
  if (n < 4 || p[0] != kKeyUpdate) return false;
  const size_t len = size_t(p[1]) << 16 | size_t(p[2]) << 8 | p[3];
  if (len != 1) {
    alert = kAlertDecodeError;
    return false;
  }
  if (n != 5) return false;  // fragmented, or followed by more
  if (p[4] > 1) {
    alert = kAlertIllegalParameter;
    return false;
  }
  if (!updateTrafficKeys(s.suite, s.read)) {
    alert = kAlertInternalError;
    return false;
  }
  if (p[4] == 1) s.keyUpdateOwed = true;
  return true;
}

// --- the capture, while OpenSSL runs the session ---

// What the callbacks learn of one TLS 1.3 session; freed with the SSL (ex_data).
struct TlsCapture {
  uint8_t client[48];
  uint8_t server[48];
  uint8_t clientLen = 0;
  uint8_t serverLen = 0;
  // Records protected under the application secrets so far, each way: the sequence
  // numbers our record layer starts from.
  uint64_t readSeq = 0;
  uint64_t writeSeq = 0;
  bool readApp = false;   // the client's Finished was read: records since are under its secret
  bool writeApp = false;  // our Finished was written
  bool readOpen = false;  // a record header was read, its body not yet deprotected
  bool unusable = false;  // a KeyUpdate went through OpenSSL: its secrets are not ours
  ~TlsCapture() {
    OPENSSL_cleanse(client, sizeof client);
    OPENSSL_cleanse(server, sizeof server);
  }
};

void freeCapture(void*, void* p, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<TlsCapture*>(p);
}

int captureIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, freeCapture);
  return index;
}

TlsCapture* captureOf(const SSL* ssl) {
  return static_cast<TlsCapture*>(SSL_get_ex_data(ssl, captureIndex()));
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// NSS key log lines: "<LABEL> <client random, 64 hex> <secret, hex>".
void onKeylog(const SSL* ssl, const char* line) {
  const std::string_view l(line);
  if (l.rfind("CLIENT_RANDOM ", 0) == 0) return;  // TLS 1.2: stays on OpenSSL
  TlsCapture* c = captureOf(ssl);
  if (!c) {
    // The first TLS 1.3 secret (a handshake one): from here the records are counted.
    c = new (std::nothrow) TlsCapture();
    if (!c) return;
    if (SSL_set_ex_data(const_cast<SSL*>(ssl), captureIndex(), c) != 1) {
      delete c;
      return;
    }
  }
  uint8_t* to;
  uint8_t* len;
  std::string_view rest;
  if (l.rfind("CLIENT_TRAFFIC_SECRET_0 ", 0) == 0) {
    to = c->client;
    len = &c->clientLen;
    rest = l.substr(24);
  } else if (l.rfind("SERVER_TRAFFIC_SECRET_0 ", 0) == 0) {
    to = c->server;
    len = &c->serverLen;
    rest = l.substr(24);
  } else {
    return;
  }
  if (rest.size() < 65 || rest[64] != ' ') return;
  rest.remove_prefix(65);
  if (rest.size() % 2 || rest.size() > 96) return;
  for (size_t i = 0; i < rest.size(); i += 2) {
    const int hi = hexDigit(rest[i]), lo = hexDigit(rest[i + 1]);
    if (hi < 0 || lo < 0) return;
    to[i / 2] = uint8_t(hi << 4 | lo);
  }
  *len = uint8_t(rest.size() / 2);
}

// Counts records: a written record header is one record sealed; a read record is counted
// once deprotected (its inner content type is reported), and is half-read in between.
void onMessage(int write, int, int type, const void* buf, size_t len, SSL* ssl, void*) {
  TlsCapture* c = captureOf(ssl);
  if (!c) return;
  const auto* b = static_cast<const uint8_t*>(buf);
  switch (type) {
    case SSL3_RT_HEADER:
      if (write) {
        if (c->writeApp) ++c->writeSeq;
      } else {
        c->readOpen = true;
      }
      break;
    case SSL3_RT_INNER_CONTENT_TYPE:
      if (!write) {
        c->readOpen = false;
        if (c->readApp) ++c->readSeq;
      }
      break;
    case SSL3_RT_HANDSHAKE:
      // Reported once the message is written (its record's header before it) or read.
      if (len == 0) break;
      if (b[0] == kFinished) {
        (write ? c->writeApp : c->readApp) = true;
      } else if (b[0] == kKeyUpdate) {
        c->unusable = true;
      }
      break;
    default:
      break;
  }
}

bool suiteOf(const SSL* ssl, TlsSuite& suite) {
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  if (!cipher) return false;
  switch (SSL_CIPHER_get_protocol_id(cipher)) {
    case 0x1301:
      suite = TlsSuite::Aes128Gcm;
      return true;
    case 0x1302:
      suite = TlsSuite::Aes256Gcm;
      return true;
    case 0x1303:
      suite = TlsSuite::Chacha20Poly1305;
      return true;
    default:
      return false;
  }
}

}  // namespace

// --- TlsRecordState ---

TlsRecordState::~TlsRecordState() {
  OPENSSL_cleanse(&read, sizeof read);
  OPENSSL_cleanse(&write, sizeof write);
}

void TlsRecordState::keepPartial(const uint8_t* data, size_t len) {
  if (!partial) partial.reset(new uint8_t[kTlsRecordHeader + kTlsMaxCiphertext]);
  std::memcpy(partial.get(), data, len);
  partialLen = uint32_t(len);
}

size_t TlsRecordState::takePartial(uint8_t* to) {
  const size_t n = partialLen;
  if (n) std::memcpy(to, partial.get(), n);
  partialLen = 0;
  return n;
}

void TlsRecordState::keepPending(const uint8_t* data, size_t len) {
  const size_t have = pendingLen - pendingOff;
  std::unique_ptr<uint8_t[]> next(new uint8_t[have + len]);
  if (have) std::memcpy(next.get(), pending.get() + pendingOff, have);
  std::memcpy(next.get() + have, data, len);
  pending = std::move(next);
  pendingOff = 0;
  pendingLen = uint32_t(have + len);
}

void TlsRecordState::dropPending() {
  pending.reset();
  pendingOff = pendingLen = 0;
}

// --- key schedule ---

bool hkdfExpandLabel(TlsSuite suite, const uint8_t* secret, size_t secretLen,
                     std::string_view label, const uint8_t* context, size_t contextLen,
                     uint8_t* out, size_t outLen) {
  // HkdfLabel: uint16 length, opaque label<7..255> = "tls13 " + label, opaque context<0..255>.
  constexpr std::string_view kPrefix = "tls13 ";
  if (kPrefix.size() + label.size() > 255 || contextLen > 255 || outLen > 0xFFFF) return false;
  uint8_t info[2 + 1 + 255 + 1 + 255];
  size_t n = 0;
  info[n++] = uint8_t(outLen >> 8);
  info[n++] = uint8_t(outLen);
  info[n++] = uint8_t(kPrefix.size() + label.size());
  std::memcpy(info + n, kPrefix.data(), kPrefix.size());
  n += kPrefix.size();
  std::memcpy(info + n, label.data(), label.size());
  n += label.size();
  info[n++] = uint8_t(contextLen);
  if (contextLen) std::memcpy(info + n, context, contextLen);
  n += contextLen;

  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = kdf ? EVP_KDF_CTX_new(kdf) : nullptr;
  EVP_KDF_free(kdf);
  if (!ctx) return false;
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  char digest[8];
  std::memcpy(digest, hashLen(suite) == 48 ? "SHA384" : "SHA256", 7);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(secret),
                                        secretLen),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
      OSSL_PARAM_construct_end(),
  };
  const bool ok = EVP_KDF_derive(ctx, out, outLen, params) == 1;
  EVP_KDF_CTX_free(ctx);
  return ok;
}

bool deriveTrafficKeys(TlsSuite suite, TlsTrafficKeys& keys, const uint8_t* secret,
                       size_t secretLen) {
  if (secretLen != hashLen(suite)) return false;
  std::memmove(keys.secret, secret, secretLen);
  return hkdfExpandLabel(suite, keys.secret, secretLen, "key", nullptr, 0, keys.key,
                         keyLen(suite)) &&
         hkdfExpandLabel(suite, keys.secret, secretLen, "iv", nullptr, 0, keys.iv, 12);
}

void tlsRecordNonce(const uint8_t iv[12], uint64_t seq, uint8_t nonce[12]) {
  std::memcpy(nonce, iv, 12);
  for (int i = 0; i < 8; ++i) nonce[11 - i] ^= uint8_t(seq >> (8 * i));
}

// --- TlsRecordCrypto ---

TlsRecordCrypto::TlsRecordCrypto() = default;

TlsRecordCrypto::~TlsRecordCrypto() {
  for (int i = 0; i < 3; ++i) {
    EVP_CIPHER_CTX_free(ctx_[i]);
    EVP_CIPHER_free(ciphers_[i]);
  }
  OPENSSL_cleanse(key_, sizeof key_);
}

EVP_CIPHER_CTX* TlsRecordCrypto::context(TlsSuite suite, const uint8_t* key, const uint8_t* iv,
                                         int enc) {
  const int i = int(suite);
  if (!ctx_[i]) {
    static constexpr const char* kNames[3] = {"AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305"};
    if (!ciphers_[i]) ciphers_[i] = EVP_CIPHER_fetch(nullptr, kNames[i], nullptr);
    if (!ciphers_[i]) return nullptr;
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return nullptr;
    if (EVP_CipherInit_ex(ctx, ciphers_[i], nullptr, nullptr, nullptr, enc) != 1) {
      EVP_CIPHER_CTX_free(ctx);
      return nullptr;
    }
    ctx_[i] = ctx;
  }
  // Setting a key expands it (AES: the key schedule and GHASH table); most records of a
  // burst share the key of the one before, so only the nonce changes.
  const size_t klen = keyLen(suite);
  const bool rekey = !keyed_[i] || CRYPTO_memcmp(key_[i], key, klen) != 0;
  if (EVP_CipherInit_ex(ctx_[i], nullptr, nullptr, rekey ? key : nullptr, iv, enc) != 1) {
    keyed_[i] = false;
    return nullptr;
  }
  if (rekey) {
    std::memcpy(key_[i], key, klen);
    keyed_[i] = true;
  }
  return ctx_[i];
}

size_t TlsRecordCrypto::seal(TlsRecordState& s, uint8_t type, const iovec* iov, int cnt,
                             size_t skip, uint8_t* out, size_t& taken) {
  taken = 0;
  if (s.write.seq == UINT64_MAX) return 0;  // §5.3: never wrap; the connection ends
  size_t total = 0;
  for (int i = 0; i < cnt; ++i) total += iov[i].iov_len;
  const size_t n = std::min(total - std::min(total, skip), kTlsMaxPlain);
  const size_t clen = n + 1 + kTlsTag;
  out[0] = kTypeApplicationData;  // the outer type of every protected record
  out[1] = 3;
  out[2] = 3;
  out[3] = uint8_t(clen >> 8);
  out[4] = uint8_t(clen);
  uint8_t nonce[12];
  tlsRecordNonce(s.write.iv, s.write.seq, nonce);
  EVP_CIPHER_CTX* ctx = context(s.suite, s.write.key, nonce, 1);
  if (!ctx) return 0;
  int outl = 0;
  if (EVP_CipherUpdate(ctx, nullptr, &outl, out, int(kTlsRecordHeader)) != 1) return 0;
  uint8_t* dst = out + kTlsRecordHeader;
  size_t left = n;
  // Encrypting straight from the queued frames gathers them: no copy before the cipher.
  for (int i = 0; i < cnt && left; ++i) {
    size_t len = iov[i].iov_len;
    const uint8_t* src = static_cast<const uint8_t*>(iov[i].iov_base);
    if (skip >= len) {
      skip -= len;
      continue;
    }
    src += skip;
    len = std::min(len - skip, left);
    skip = 0;
    if (EVP_CipherUpdate(ctx, dst, &outl, src, int(len)) != 1) return 0;
    dst += outl;
    left -= len;
  }
  if (EVP_CipherUpdate(ctx, dst, &outl, &type, 1) != 1) return 0;
  dst += outl;
  if (EVP_CipherFinal_ex(ctx, dst, &outl) != 1) return 0;
  dst += outl;
  if (dst != out + kTlsRecordHeader + n + 1) return 0;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, int(kTlsTag), dst) != 1) return 0;
  ++s.write.seq;
  taken = n;
  return kTlsRecordHeader + clen;
}

size_t TlsRecordCrypto::seal(TlsRecordState& s, uint8_t type, const uint8_t* data, size_t len,
                             uint8_t* out) {
  iovec iov{const_cast<uint8_t*>(data), len};
  size_t taken = 0;
  size_t n = seal(s, type, &iov, 1, 0, out, taken);
  return taken == len ? n : 0;
}

size_t TlsRecordCrypto::sealKeyUpdate(TlsRecordState& s, uint8_t* out) {
  const uint8_t msg[5] = {kKeyUpdate, 0, 0, 1, 0};  // update_not_requested
  const size_t n = seal(s, kTypeHandshake, msg, sizeof msg, out);
  if (n == 0 || !updateTrafficKeys(s.suite, s.write)) return 0;
  s.keyUpdateOwed = false;
  return n;
}

bool TlsRecordCrypto::openOne(TlsRecordState& s, uint8_t* rec, size_t clen, size_t& inner) {
  uint8_t nonce[12];
  tlsRecordNonce(s.read.iv, s.read.seq, nonce);
  EVP_CIPHER_CTX* ctx = context(s.suite, s.read.key, nonce, 0);
  if (!ctx) return false;
  uint8_t* body = rec + kTlsRecordHeader;
  const size_t len = clen - kTlsTag;
  int outl = 0, fin = 0;
  if (EVP_CipherUpdate(ctx, nullptr, &outl, rec, int(kTlsRecordHeader)) != 1 ||
      EVP_CipherUpdate(ctx, body, &outl, body, int(len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, int(kTlsTag), body + len) != 1 ||
      EVP_CipherFinal_ex(ctx, body + outl, &fin) != 1)
    return false;
  if (size_t(outl) + size_t(fin) != len) return false;
  inner = len;
  ++s.read.seq;
  return true;
}

TlsOpenResult TlsRecordCrypto::open(TlsRecordState& s, uint8_t* data, size_t len) {
  TlsOpenResult r;
  auto fatal = [&r](uint8_t alert) {
    r.status = TlsOpenStatus::Fatal;
    r.alert = alert;
    return r;
  };
  size_t off = 0;
  while (len - off >= kTlsRecordHeader) {
    uint8_t* rec = data + off;
    const size_t clen = size_t(rec[3]) << 8 | rec[4];
    // Every record after the handshake is protected (no ChangeCipherSpec any more).
    if (rec[0] != kTypeApplicationData) return fatal(kAlertUnexpectedMessage);
    if (clen > kTlsMaxCiphertext) return fatal(kAlertRecordOverflow);
    if (len - off - kTlsRecordHeader < clen) break;  // the rest comes with the next read
    if (clen < 1 + kTlsTag) return fatal(kAlertBadRecordMac);
    if (s.read.seq == UINT64_MAX) return fatal(kAlertInternalError);
    size_t inner = 0;
    if (!openOne(s, rec, clen, inner)) return fatal(kAlertBadRecordMac);
    off += kTlsRecordHeader + clen;
    r.consumed = off;
    // TLSInnerPlaintext: content, its type, zero padding (§5.2, §5.4).
    const uint8_t* p = rec + kTlsRecordHeader;
    size_t n = inner;
    while (n > 0 && p[n - 1] == 0) --n;
    if (n == 0) return fatal(kAlertUnexpectedMessage);
    const uint8_t type = p[--n];
    if (n > kTlsMaxPlain) return fatal(kAlertRecordOverflow);
    switch (type) {
      case kTypeApplicationData:
        // Plaintext is shorter than its record: moving it down never overtakes the reading.
        if (n) std::memmove(data + r.plain, p, n);
        r.plain += n;
        break;
      case kTypeAlert:
        if (n != 2) return fatal(kAlertDecodeError);
        if (p[1] == kAlertCloseNotify) {
          r.status = TlsOpenStatus::CloseNotify;
          return r;
        }
        // Any other alert ends the connection; nothing is answered to it.
        r.status = TlsOpenStatus::Fatal;
        r.peerAlert = true;
        return r;
      case kTypeHandshake: {
        uint8_t alert = 0;
        if (!onHandshake(s, p, n, alert)) return fatal(alert);
        break;
      }
      default:
        return fatal(kAlertUnexpectedMessage);
    }
  }
  return r;
}

// --- the switch ---

void watchTlsRecords(SSL_CTX* ctx) {
  captureIndex();  // made before any worker thread races for it
  SSL_CTX_set_keylog_callback(ctx, onKeylog);
  SSL_CTX_set_msg_callback(ctx, onMessage);
}

bool tlsRecordsReady(SSL* ssl) {
  const TlsCapture* c = captureOf(ssl);
  TlsSuite suite;
  return c && !c->unusable && c->readApp && c->writeApp && !c->readOpen && c->clientLen &&
         c->serverLen && SSL_version(ssl) == TLS1_3_VERSION && SSL_is_init_finished(ssl) &&
         !SSL_has_pending(ssl) && SSL_get_shutdown(ssl) == 0 && suiteOf(ssl, suite) &&
         c->clientLen == hashLen(suite) && c->serverLen == hashLen(suite);
}

std::unique_ptr<TlsRecordState> takeTlsRecords(SSL* ssl) {
  if (!tlsRecordsReady(ssl)) return nullptr;
  const TlsCapture* c = captureOf(ssl);
  TlsSuite suite{};
  suiteOf(ssl, suite);
  std::unique_ptr<TlsRecordState> s(new (std::nothrow) TlsRecordState());
  if (!s) return nullptr;
  s->suite = suite;
  s->secretLen = uint8_t(hashLen(suite));
  s->keyLen = uint8_t(keyLen(suite));
  if (!deriveTrafficKeys(suite, s->read, c->client, c->clientLen) ||
      !deriveTrafficKeys(suite, s->write, c->server, c->serverLen))
    return nullptr;
  s->read.seq = c->readSeq;
  s->write.seq = c->writeSeq;
  return s;
}

}  // namespace lapps
