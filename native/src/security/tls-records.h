// Our own TLS 1.3 record layer (RFC 8446 §5), used once a session's handshake is over, in
// place of the OpenSSL session (what kernel TLS would do): an idle OpenSSL 3.0 session
// holds ~13 KB, the state below ~250 bytes. OpenSSL still does the whole handshake, every
// TLS 1.2 session and any other suite; it is used here only for HKDF and the AEAD.
//
// The traffic secrets come from OpenSSL's keylog callback and the record sequence numbers
// from its message callback (records protected under the application secrets before the
// switch), both installed by watchTlsRecords(). takeTlsRecords() derives the keys, after
// which the SSL can be freed. No I/O here: the caller reads and writes the socket.
#pragma once

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace lapps {

enum class TlsSuite : uint8_t { Aes128Gcm, Aes256Gcm, Chacha20Poly1305 };

// RFC 8446 §5.1, §5.2: a record carries at most 2^14 bytes of plaintext; its ciphertext
// (inner content type, padding and tag included) at most 2^14 + 256.
constexpr size_t kTlsRecordHeader = 5;
constexpr size_t kTlsMaxPlain = 16384;
constexpr size_t kTlsMaxCiphertext = kTlsMaxPlain + 256;
constexpr size_t kTlsTag = 16;
// The most one sealed record takes: header, plaintext, content type, tag.
constexpr size_t kTlsMaxSealed = kTlsRecordHeader + kTlsMaxPlain + 1 + kTlsTag;

// Alert descriptions we send (RFC 8446 §6).
enum TlsAlert : uint8_t {
  kAlertCloseNotify = 0,
  kAlertUnexpectedMessage = 10,
  kAlertBadRecordMac = 20,
  kAlertRecordOverflow = 22,
  kAlertIllegalParameter = 47,
  kAlertDecodeError = 50,
  kAlertInternalError = 80,
};

// One direction: its current application traffic secret (kept for KeyUpdate), the key and
// IV derived from it, and the next record's sequence number.
struct TlsTrafficKeys {
  uint8_t secret[48];
  uint8_t key[32];
  uint8_t iv[12];
  uint64_t seq;
};

// A connection's record state after the switch. Buffers exist only while they hold bytes.
struct TlsRecordState {
  TlsTrafficKeys read{};
  TlsTrafficKeys write{};
  TlsSuite suite = TlsSuite::Aes128Gcm;
  uint8_t secretLen = 32;  // the suite's hash length
  uint8_t keyLen = 16;
  // The client asked for a KeyUpdate (update_requested): ours goes before our next record.
  bool keyUpdateOwed = false;
  // The received bytes of an unfinished record (its header included), between reads.
  uint32_t partialLen = 0;
  std::unique_ptr<uint8_t[]> partial;
  // Sealed bytes the socket did not take yet (a sealed record is sent as it is, or never).
  uint32_t pendingOff = 0;
  uint32_t pendingLen = 0;
  std::unique_ptr<uint8_t[]> pending;

  TlsRecordState() = default;
  ~TlsRecordState();
  TlsRecordState(const TlsRecordState&) = delete;
  TlsRecordState& operator=(const TlsRecordState&) = delete;

  // Keeps [data, data+len) as the partial record (len < a full record).
  void keepPartial(const uint8_t* data, size_t len);
  // Copies the partial record to `to` and forgets it (the buffer stays until
  // releasePartial, so a read that brings nothing does not allocate again); its length.
  size_t takePartial(uint8_t* to);
  void releasePartial() {
    if (partialLen == 0) partial.reset();
  }
  // Appends sealed bytes that must be sent before anything sealed later.
  void keepPending(const uint8_t* data, size_t len);
  void dropPending();
};

// What openTlsRecords found.
enum class TlsOpenStatus : uint8_t { Ok, CloseNotify, Fatal };
struct TlsOpenResult {
  size_t consumed = 0;  // bytes of whole records processed; the rest is a partial record
  size_t plain = 0;     // application data, moved to the start of the buffer
  TlsOpenStatus status = TlsOpenStatus::Ok;
  uint8_t alert = 0;  // Fatal: the alert to send (0 with `peerAlert`: none, the peer's)
  bool peerAlert = false;
};

// One worker's AEAD contexts, one per suite, made on first use and re-keyed only when a
// record of another key comes (the IV alone is set per record). Not thread-safe.
class TlsRecordCrypto {
 public:
  TlsRecordCrypto();
  ~TlsRecordCrypto();
  TlsRecordCrypto(const TlsRecordCrypto&) = delete;
  TlsRecordCrypto& operator=(const TlsRecordCrypto&) = delete;

  // Seals up to kTlsMaxPlain bytes of `iov` (starting `skip` bytes in) as one record of
  // `type` into `out` (kTlsMaxSealed bytes). Returns the record's size and sets `taken` to
  // the plaintext it holds; 0 on failure (a sequence number about to wrap, OpenSSL error).
  size_t seal(TlsRecordState& s, uint8_t type, const iovec* iov, int cnt, size_t skip, uint8_t* out,
              size_t& taken);
  // Seals one record of `len` bytes.
  size_t seal(TlsRecordState& s, uint8_t type, const uint8_t* data, size_t len, uint8_t* out);
  // Our KeyUpdate (update_not_requested) under the current write key, then the write key
  // moves on (RFC 8446 §4.6.3). Returns the record's size, 0 on failure.
  size_t sealKeyUpdate(TlsRecordState& s, uint8_t* out);
  // Opens the whole records at the start of data[0, len) in place, in order: application
  // data is gathered at data[0, plain); a KeyUpdate moves the read key (and owes ours if
  // requested); an alert or anything not allowed after the handshake ends the processing.
  TlsOpenResult open(TlsRecordState& s, uint8_t* data, size_t len);
  // Where a write seals its records: kSealBatch records (made on first use).
  static constexpr size_t kSealBatch = 4;
  uint8_t* sealBuffer() {
    if (!sealBuf_) sealBuf_.reset(new uint8_t[kSealBatch * kTlsMaxSealed]);
    return sealBuf_.get();
  }

 private:
  EVP_CIPHER_CTX* context(TlsSuite suite, const uint8_t* key, const uint8_t* iv, int enc);
  bool openOne(TlsRecordState& s, uint8_t* rec, size_t clen, size_t& inner);

  EVP_CIPHER* ciphers_[3] = {};
  EVP_CIPHER_CTX* ctx_[3] = {};
  uint8_t key_[3][32] = {};  // the key each context holds
  bool keyed_[3] = {};
  std::unique_ptr<uint8_t[]> sealBuf_;
};

// HKDF-Expand-Label (RFC 8446 §7.1) with the suite's hash: `out` gets `outLen` bytes.
bool hkdfExpandLabel(TlsSuite suite, const uint8_t* secret, size_t secretLen,
                     std::string_view label, const uint8_t* context, size_t contextLen,
                     uint8_t* out, size_t outLen);
// Sets keys.secret (secretLen bytes) and derives keys.key and keys.iv from it (§7.3).
bool deriveTrafficKeys(TlsSuite suite, TlsTrafficKeys& keys, const uint8_t* secret,
                       size_t secretLen);
// The per-record nonce (§5.3): the IV xor the big-endian sequence number.
void tlsRecordNonce(const uint8_t iv[12], uint64_t seq, uint8_t nonce[12]);

// Installs the keylog and message callbacks that prepare sessions of `ctx` for the switch.
void watchTlsRecords(SSL_CTX* ctx);
// True when `ssl` may be taken over now: TLS 1.3 with a suite above, handshake done and
// its secrets seen, no KeyUpdate through OpenSSL, nothing buffered or half-read inside it.
// The caller also makes sure OpenSSL holds nothing unwritten (its queue is empty).
bool tlsRecordsReady(SSL* ssl);
// Derives the record state from a ready session; null on failure. The caller then frees
// the session without writing to it.
std::unique_ptr<TlsRecordState> takeTlsRecords(SSL* ssl);

}  // namespace lapps
