// What the fanout mode puts on the wire and reads back (bench/peers/README.md, "Fan-out
// peers", is the contract every peer follows):
//
//  * a published message's payload: sequence number (u64, little-endian), send time (u64
//    LE, CLOCK_MONOTONIC ns, the clock nowNs() reads), then filler up to --size bytes;
//  * with --lapps the same two numbers travel as CBOR: the publish is a notification
//    {lapps = 1, method = "pub", cid = 1, params = [seq, ns, filler]} and each delivery is
//    an OON {cid = 1, message = [seq, ns, filler]}; readCborDelivery() decodes just enough
//    of it to find the two numbers;
//  * commands: "sub" (join the channel; the server answers with one message, the ack),
//    "go <n> <size>" (server publisher: n more publishes), "rate <r> <size>" (server
//    publisher: r publishes per second from now on). Text frames; with --lapps requests or
//    notifications of those names; with --raw lines ending in '\n'.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace loadgen::fanout {

inline void putLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}
inline uint64_t getLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// --- CBOR (RFC 8949), the few items the LAppS protocol messages here need ----------------

// Appends a head of major type `major` with argument `v`, in its shortest form.
inline void cborHead(std::vector<uint8_t>& out, uint8_t major, uint64_t v) {
  uint8_t m = uint8_t(major << 5);
  if (v < 24) {
    out.push_back(uint8_t(m | v));
    return;
  }
  int bytes = v <= 0xFF ? 1 : v <= 0xFFFF ? 2 : v <= 0xFFFFFFFF ? 4 : 8;
  out.push_back(uint8_t(m | (bytes == 1 ? 24 : bytes == 2 ? 25 : bytes == 4 ? 26 : 27)));
  for (int i = bytes - 1; i >= 0; --i) out.push_back(uint8_t(v >> (8 * i)));
}
inline void cborText(std::vector<uint8_t>& out, std::string_view s) {
  cborHead(out, 3, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

// {lapps = 1, method = m[, cid = 1], params = [a, b, "x..." (filler bytes)]}: a request
// when cid is absent (notification = false), else a notification. filler < 0: no third
// parameter; params are left out when a and b are both absent (nParams == 0).
inline void cborCall(std::vector<uint8_t>& out, std::string_view method, bool notification,
                     int nParams, uint64_t a, uint64_t b, size_t filler) {
  cborHead(out, 5, 2 + (notification ? 1 : 0) + (nParams ? 1 : 0));
  cborText(out, "lapps");
  cborHead(out, 0, 1);
  cborText(out, "method");
  cborText(out, method);
  if (notification) {
    cborText(out, "cid");
    cborHead(out, 0, 1);
  }
  if (nParams) {
    cborText(out, "params");
    cborHead(out, 4, uint64_t(nParams));
    cborHead(out, 0, a);
    cborHead(out, 0, b);
    if (nParams == 3) {
      cborHead(out, 3, filler);
      out.insert(out.end(), filler, uint8_t('x'));
    }
  }
}

// Reads one CBOR head at p (bounded by end): major type and argument. False when it is
// cut off or uses an indefinite length.
inline bool cborReadHead(const uint8_t*& p, const uint8_t* end, uint8_t* major, uint64_t* v) {
  if (p >= end) return false;
  uint8_t b = *p++;
  *major = b >> 5;
  uint8_t info = b & 31;
  if (info < 24) {
    *v = info;
    return true;
  }
  if (info > 27) return false;
  int bytes = 1 << (info - 24);
  if (end - p < bytes) return false;
  uint64_t x = 0;
  for (int i = 0; i < bytes; ++i) x = (x << 8) | *p++;
  *v = x;
  return true;
}

// Finds seq and send time in the first bytes of an OON {cid = n, message = [seq, ns, ...]}
// (keys in any order; other keys may only hold integers). False if they are not there.
inline bool readCborDelivery(const uint8_t* p, const uint8_t* end, uint64_t* seq, uint64_t* ns) {
  uint8_t major;
  uint64_t pairs;
  if (!cborReadHead(p, end, &major, &pairs) || major != 5) return false;
  for (uint64_t i = 0; i < pairs; ++i) {
    uint64_t keyLen;
    if (!cborReadHead(p, end, &major, &keyLen) || major != 3 || uint64_t(end - p) < keyLen) {
      return false;
    }
    bool isMessage = std::string_view(reinterpret_cast<const char*>(p), keyLen) == "message";
    p += keyLen;
    uint64_t v;
    if (!cborReadHead(p, end, &major, &v)) return false;
    if (!isMessage) {
      if (major > 1) return false;  // cid: an integer
      continue;
    }
    if (major != 4 || v < 2) return false;
    return cborReadHead(p, end, &major, seq) && major == 0 && cborReadHead(p, end, &major, ns) &&
           major == 0;
  }
  return false;
}

}  // namespace loadgen::fanout
