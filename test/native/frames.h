// Test helpers for the frame parser: building client (masked) and server (unmasked) frames
// (written independently of frame-encoder.h), a sink that records what it is told, and a
// driver that feeds a stream split into separately allocated pieces (so ASan catches any read
// past a piece), in either parser role.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame-parser.h"
#include "test.h"

namespace lapps::test {

using Bytes = std::vector<uint8_t>;

struct FrameOpts {
  bool fin = true;
  bool masked = true;
  uint8_t rsv = 0;    // RSV1-3 bits, already shifted (0x40, 0x20, 0x10)
  int lenBytes = -1;  // -1: shortest length encoding; 0, 2 or 8 to force one
  uint32_t mask = 0x9c3e51a7;
  int64_t declaredLen = -1;  // >= 0: put this in the header instead of the payload size
};

inline void appendFrame(Bytes& out, uint8_t opcode, std::string_view payload,
                        const FrameOpts& o = {}) {
  const uint64_t n = o.declaredLen >= 0 ? static_cast<uint64_t>(o.declaredLen) : payload.size();
  out.push_back(static_cast<uint8_t>((o.fin ? 0x80 : 0) | o.rsv | opcode));
  const uint8_t maskBit = o.masked ? 0x80 : 0;
  const int lenBytes = o.lenBytes >= 0 ? o.lenBytes : n < 126 ? 0 : n < 65536 ? 2 : 8;
  if (lenBytes == 0) {
    out.push_back(static_cast<uint8_t>(maskBit | n));
  } else {
    out.push_back(static_cast<uint8_t>(maskBit | (lenBytes == 2 ? 126 : 127)));
    for (int i = lenBytes - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
  }
  uint8_t key[4] = {static_cast<uint8_t>(o.mask >> 24), static_cast<uint8_t>(o.mask >> 16),
                    static_cast<uint8_t>(o.mask >> 8), static_cast<uint8_t>(o.mask)};
  if (o.masked) out.insert(out.end(), key, key + 4);
  for (size_t i = 0; i < payload.size(); ++i)
    out.push_back(static_cast<uint8_t>(payload[i]) ^ (o.masked ? key[i % 4] : 0));
}

inline Bytes frame(uint8_t opcode, std::string_view payload, const FrameOpts& o = {}) {
  Bytes b;
  appendFrame(b, opcode, payload, o);
  return b;
}

inline FrameOpts unmasked(bool fin = true) {
  FrameOpts o;
  o.fin = fin;
  o.masked = false;
  return o;
}

// A frame as a server sends it (unmasked).
inline Bytes serverFrame(uint8_t opcode, std::string_view payload, bool fin = true) {
  return frame(opcode, payload, unmasked(fin));
}

// The stream with every frame's masking flipped: masked frames lose their key (payload
// unmasked), unmasked ones gain `key`. So a stream of client frames becomes the same frames as
// a server sends them, and the other way round, and both roles see the same events. A frame
// cut short by the end of the stream is flipped as far as it goes; one cut inside its key
// keeps only the header bytes the server would have checked without it (b0, and b1 if the
// length was extended), so the client's header stays incomplete too.
inline Bytes flipMasking(const Bytes& in, uint32_t key = 0x5a0ff3c1) {
  const uint8_t k[4] = {static_cast<uint8_t>(key >> 24), static_cast<uint8_t>(key >> 16),
                        static_cast<uint8_t>(key >> 8), static_cast<uint8_t>(key)};
  Bytes out;
  size_t i = 0;
  while (i < in.size()) {
    const size_t start = out.size();
    out.push_back(in[i++]);
    if (i == in.size()) break;
    const bool masked = (in[i] & 0x80) != 0;
    const uint8_t len7 = in[i] & 0x7F;
    out.push_back(in[i++] ^ 0x80);
    const size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    uint64_t n = len7;
    if (ext != 0) n = 0;
    for (size_t e = 0; e < ext && i < in.size(); ++e) {
      n = (n << 8) | in[i];
      out.push_back(in[i++]);
    }
    const uint8_t* mask = k;
    if (masked) {
      if (in.size() - i < 4) {
        out.resize(start + (ext == 0 ? 1 : 2));
        break;
      }
      mask = in.data() + i;
      i += 4;
    } else {
      out.insert(out.end(), k, k + 4);
    }
    for (uint64_t j = 0; j < n && i < in.size(); ++j) out.push_back(in[i++] ^ mask[j % 4]);
  }
  return out;
}

inline Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes all;
  for (const Bytes& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

inline std::string closePayload(uint16_t code, std::string_view reason = {}) {
  std::string s;
  s.push_back(static_cast<char>(code >> 8));
  s.push_back(static_cast<char>(code & 0xFF));
  s.append(reason);
  return s;
}

struct Event {
  std::string kind;   // text, binary, ping, pong, close, error
  uint32_t code = 0;  // close code or ParseError
  std::string data;
  bool operator==(const Event&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const Event& e) {
  return os << e.kind << "/" << e.code << "/" << show(e.data);
}

inline std::ostream& operator<<(std::ostream& os, const std::vector<Event>& v) {
  os << "[";
  for (const Event& e : v) os << e << " ";
  return os << "]";
}

inline Event errorEvent(ParseError e) {
  return {"error", static_cast<uint32_t>(e), ""};
}

// Records callbacks; a message is recorded once, when its last chunk arrives.
struct Recorder {
  std::vector<Event> events;
  std::string partial;
  bool inMessage = false, partialText = false;
  bool flagsOk = true;  // first/last/text flags were consistent
  int dataCalls = 0;
  const uint8_t* lastData = nullptr;
  int stopAfter = -1;  // return false from the Nth callback (counting from 1)
  int callbacks = 0;
  int errors = 0;

  bool next() { return ++callbacks != stopAfter; }
  bool onData(const uint8_t* d, size_t n, bool first, bool last, bool text) {
    ++dataCalls;
    lastData = d;
    if (first == inMessage || (!first && text != partialText)) flagsOk = false;
    if (first) partial.clear(), partialText = text;
    if (n) partial.append(reinterpret_cast<const char*>(d), n);
    inMessage = !last;
    if (last) events.push_back({text ? "text" : "binary", 0, partial});
    return next();
  }
  bool onPing(const uint8_t* p, size_t n) { return control("ping", 0, p, n); }
  bool onPong(const uint8_t* p, size_t n) { return control("pong", 0, p, n); }
  bool onClose(uint16_t code, const uint8_t* p, size_t n) { return control("close", code, p, n); }
  void onError(ParseError e) {
    ++errors;
    events.push_back(errorEvent(e));
  }
  bool control(const char* kind, uint16_t code, const uint8_t* p, size_t n) {
    events.push_back({kind, code, n ? std::string(reinterpret_cast<const char*>(p), n) : ""});
    return next();
  }
};

struct RunResult {
  std::vector<Event> events;
  bool ok = true;                // every call consumed its piece (until an error), flags consistent
  size_t errorPiece = SIZE_MAX;  // index of the piece during which the error was reported
};

// Feeds `stream` as pieces ending at the ascending offsets in `cuts` (and at the end), each
// piece copied into its own exactly sized allocation, parsed in role R.
template <FrameRole R = FrameRole::Server>
inline RunResult runSplit(const Bytes& stream, const std::vector<size_t>& cuts,
                          const ParserLimits& lim) {
  FrameParserState st;
  Recorder rec;
  RunResult r;
  size_t begin = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : stream.size();
    const size_t n = end - begin;
    uint8_t* piece = new uint8_t[n ? n : 1];
    if (n) std::memcpy(piece, stream.data() + begin, n);
    const bool failedBefore = st.failed();
    const size_t used = parseFrames<R>(st, lim, piece, n, rec);
    delete[] piece;
    if (failedBefore ? used != 0 : (!st.failed() && used != n)) r.ok = false;
    if (!failedBefore && st.failed()) r.errorPiece = i;
    begin = end;
  }
  if (rec.errors > 1 || !rec.flagsOk) r.ok = false;
  r.events = std::move(rec.events);
  return r;
}

template <FrameRole R = FrameRole::Server>
inline RunResult runSplit(const Bytes& stream, const std::vector<size_t>& cuts,
                          uint64_t maxMessage = uint64_t{1} << 32) {
  return runSplit<R>(stream, cuts, ParserLimits{maxMessage});
}

inline std::vector<size_t> everyByte(size_t len) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < len; ++i) cuts.push_back(i);
  return cuts;
}

inline std::vector<size_t> chunked(size_t len, size_t chunk) {
  std::vector<size_t> cuts;
  for (size_t i = chunk; i < len; i += chunk) cuts.push_back(i);
  return cuts;
}

}  // namespace lapps::test
