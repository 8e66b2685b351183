// RFC 6455 frame parser for both ends of a connection, chosen at compile time (FrameRole):
// the server validates masked client frames and unmasks them in place; the outbound client
// validates unmasked server frames and only reads them. Frames go to a sink. No I/O and no
// allocation; the server's connection, the outbound client, the tests, the fuzzers and the
// benchmark drive this same template with different sinks.
//
// Sink requirements (a false return means "stop now", e.g. the connection was closed), with
// Bytes = FrameBytes<role>: uint8_t for the server, const uint8_t for the client:
//   bool onData(Bytes* data, size_t len, bool first, bool last, bool text);
//     Message payload, unmasked and (for text) UTF-8 validated so far. A message that is one
//     frame wholly inside the buffer arrives in ONE call (first = last = true) pointing into
//     the caller's buffer. Otherwise chunks arrive as bytes do; an empty message or empty
//     final frame still gives a call with len 0 and last = true. Empty non-final fragments
//     give no call.
//   bool onPing(Bytes* payload, size_t len);
//   bool onPong(Bytes* payload, size_t len);
//   bool onClose(uint16_t code, const uint8_t* reason, size_t len);  // code 1005 if empty
//   void onError(ParseError e);  // once; the state then stays failed
// The parser does not stop by itself after a Close frame: onClose returns false when the
// connection should read no further (RFC 6455 §5.5.1: nothing may follow a Close).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "protocol/close-code.h"
#include "protocol/opcode.h"
#include "protocol/parse-error.h"
#include "protocol/unmask.h"
#include "protocol/utf8-validator.h"

namespace lapps {

// The end that parses: the server reads client frames, which must be masked; the client
// reads server frames, which must not be (RFC 6455 §5.1). A template parameter, so that
// neither instantiation tests the role at run time.
enum class FrameRole : uint8_t { Server, Client };

// The server unmasks payloads in place; the client never writes to what it parses.
template <FrameRole R>
using FrameBytes = std::conditional_t<R == FrameRole::Server, uint8_t, const uint8_t>;

struct ParserLimits {
  uint64_t maxMessageSize;             // payload bytes of one message, summed over its fragments
  uint64_t maxFrameSize = UINT64_MAX;  // payload bytes of one data frame
  uint32_t maxFragments = UINT32_MAX;  // frames of one data message
};

// Per-connection parser state; zero/default-initialised means "between frames".
struct FrameParserState {
  // First, together: all four are zero between messages, when nothing is pending (atRest).
  ParseError error = ParseError::None;    // sticky
  Opcode message = Opcode::Continuation;  // Text/Binary of the open message; Continuation = none
  bool inPayload = false;     // header consumed, payload (possibly empty) still to process
  uint8_t headerFill = 0;     // header bytes held below (header split across reads)
  uint32_t fragments = 0;     // frames of the open data message, current frame incl.
  uint64_t remaining = 0;     // payload bytes of the current frame not yet seen
  uint64_t messageBytes = 0;  // declared payload of the open data message, current frame incl.
  Utf8Validator utf8;         // progress through the open text message
  Opcode opcode = Opcode::Continuation;  // current frame
  bool fin = false;                      // FIN of the current frame
  bool messageStarted = false;           // onData(first = true) was already called for this message
  uint8_t maskOffset = 0;                // payload bytes of the current frame seen, mod 4 (server)
  uint8_t mask[4] = {};                  // masking key of the current frame (server)
  uint8_t header[14] = {};
  uint8_t controlFill = 0;  // control payload bytes held below (payload split across reads)
  uint8_t control[125] = {};

  bool failed() const { return error != ParseError::None; }
  // Between messages, with no error: a fresh state would parse what follows the same way
  // (the other fields are set again when the next frame begins). One load and compare:
  // the server asks after every read (core/connection.cc).
  bool atRest() const {
    uint32_t first4;
    std::memcpy(&first4, this, sizeof first4);
    return first4 == 0;
  }
};

static_assert(offsetof(FrameParserState, headerFill) == 3, "atRest() reads the first 4 bytes");

namespace detail {

struct FrameHeader {
  uint64_t length;
  uint8_t mask[4];  // server only
  uint8_t size;     // full header size, 0 while fewer than 2 bytes are known
  Opcode opcode;
  bool fin;
};

// Validates the `avail` (>= 1) header bytes known so far, in wire order, so the error found
// does not depend on how the stream was split. The header is complete (and `h` filled) when
// this returns None with h.size != 0 && avail >= h.size.
template <FrameRole R>
inline ParseError checkHeader(const uint8_t* p, size_t avail, const FrameParserState& st,
                              const ParserLimits& lim, FrameHeader& h) {
  h.size = 0;
  const uint8_t b0 = p[0];
  if (b0 & 0x70) return ParseError::ReservedBits;
  const uint8_t op = b0 & 0x0F;
  if ((op > 2 && op < 8) || op > 10) return ParseError::ReservedOpcode;
  const bool fin = (b0 & 0x80) != 0;
  const bool control = (op & 8) != 0;
  if (control) {
    if (!fin) return ParseError::ControlFragmented;
  } else if (op == 0) {
    if (st.message == Opcode::Continuation) return ParseError::UnexpectedContinuation;
    if (st.fragments >= lim.maxFragments) return ParseError::TooManyFragments;
  } else if (st.message != Opcode::Continuation) {
    return ParseError::ExpectedContinuation;
  }
  if (avail < 2) return ParseError::None;
  const uint8_t b1 = p[1];
  if constexpr (R == FrameRole::Server) {
    if (!(b1 & 0x80)) return ParseError::UnmaskedFrame;
  } else {
    if (b1 & 0x80) return ParseError::MaskedFrame;
  }
  const uint8_t len7 = b1 & 0x7F;
  if (control && len7 > 125) return ParseError::ControlTooLong;
  constexpr uint8_t kKey = R == FrameRole::Server ? 4 : 0;  // masking key bytes
  h.size = len7 < 126 ? 2 + kKey : len7 == 126 ? 4 + kKey : 10 + kKey;
  h.opcode = static_cast<Opcode>(op);
  h.fin = fin;
  if (avail < h.size) return ParseError::None;
  uint64_t length = len7;
  if (len7 == 126) {
    length = (uint64_t{p[2]} << 8) | p[3];
  } else if (len7 == 127) {
    length = 0;
    for (int i = 2; i < 10; ++i) length = (length << 8) | p[i];
    if (length >> 63) return ParseError::BadLength;
  }
  if (!control) {
    // Checked before any payload is delivered; overflow-safe since messageBytes <= max.
    const uint64_t before = op == 0 ? st.messageBytes : 0;
    if (length > lim.maxMessageSize - before) return ParseError::MessageTooBig;
    if (length > lim.maxFrameSize) return ParseError::FrameTooBig;
  }
  h.length = length;
  if constexpr (R == FrameRole::Server) std::memcpy(h.mask, p + h.size - 4, 4);
  return ParseError::None;
}

template <class Sink>
inline bool fail(FrameParserState& st, ParseError e, Sink& sink) {
  st.error = e;
  sink.onError(e);
  return false;
}

// p[0, n) is a complete, unmasked control payload (n <= 125).
template <FrameRole R, class Sink>
inline bool dispatchControl(FrameParserState& st, Opcode op, FrameBytes<R>* p, size_t n,
                            Sink& sink) {
  if (op == Opcode::Ping) return sink.onPing(p, n);
  if (op == Opcode::Pong) return sink.onPong(p, n);
  if (n == 0) return sink.onClose(kNoStatus, p, 0);
  if (n == 1) return fail(st, ParseError::BadCloseLength, sink);
  const uint16_t code = static_cast<uint16_t>((p[0] << 8) | p[1]);
  if (!isValidCloseCode(code)) return fail(st, ParseError::InvalidCloseCode, sink);
  if (!isValidUtf8(p + 2, n - 2)) return fail(st, ParseError::InvalidCloseReason, sink);
  return sink.onClose(code, p + 2, n - 2);
}

template <FrameRole R>
inline void beginFrame(FrameParserState& st, const FrameHeader& h) {
  st.opcode = h.opcode;
  st.fin = h.fin;
  st.remaining = h.length;
  if constexpr (R == FrameRole::Server) {
    std::memcpy(st.mask, h.mask, 4);
    st.maskOffset = 0;
  }
  st.inPayload = true;
  if (isControl(h.opcode)) {
    st.controlFill = 0;
    return;
  }
  if (h.opcode != Opcode::Continuation) {
    st.message = h.opcode;
    st.messageBytes = 0;
    st.fragments = 0;
    st.messageStarted = false;
    st.utf8.reset();
  }
  st.messageBytes += h.length;
  ++st.fragments;
}

// Consumes as much of the current frame's payload as data[pos, len) holds.
template <FrameRole R, class Sink>
inline bool continuePayload(FrameParserState& st, FrameBytes<R>* data, size_t len, size_t& pos,
                            Sink& sink) {
  const size_t avail = len - pos;
  const size_t n = st.remaining < avail ? static_cast<size_t>(st.remaining) : avail;
  FrameBytes<R>* p = data + pos;
  pos += n;
  st.remaining -= n;
  if (isControl(st.opcode)) {
    uint8_t* dst = st.control + st.controlFill;
    if (n != 0) std::memcpy(dst, p, n);
    if constexpr (R == FrameRole::Server) unmask(dst, n, st.mask, st.controlFill);
    st.controlFill = static_cast<uint8_t>(st.controlFill + n);
    if (st.remaining != 0) return true;
    st.inPayload = false;
    return dispatchControl<R>(st, st.opcode, st.control, st.controlFill, sink);
  }
  if constexpr (R == FrameRole::Server) {
    unmask(p, n, st.mask, st.maskOffset);
    st.maskOffset = static_cast<uint8_t>((st.maskOffset + n) & 3);
  }
  const bool frameDone = st.remaining == 0;
  const bool last = frameDone && st.fin;
  const bool text = st.message == Opcode::Text;
  if (text && (!st.utf8.feed(p, n) || (last && !st.utf8.complete())))
    return fail(st, ParseError::InvalidUtf8, sink);
  if (frameDone) st.inPayload = false;
  if (n == 0 && !last) return true;
  const bool first = !st.messageStarted;
  st.messageStarted = !last;
  if (last) st.message = Opcode::Continuation;
  return sink.onData(p, n, first, last, text);
}

}  // namespace detail

// Parses data[0, len) as role R (the server's data is modified in place: payloads are
// unmasked). Returns the bytes consumed: len, or fewer if the sink stopped (call again with
// the rest to resume). After an error the state stays failed and later calls consume nothing.
// Always inlined: each caller (the worker's read path, the outbound client, fuzzers,
// benchmarks) has its own sink, and the per-frame calls into the sink only vanish when the
// loop is inlined there.
template <FrameRole R = FrameRole::Server, class Sink>
__attribute__((always_inline)) inline size_t parseFrames(FrameParserState& st,
                                                         const ParserLimits& lim,
                                                         FrameBytes<R>* data, size_t len,
                                                         Sink& sink) {
  if (st.failed()) return 0;
  size_t pos = 0;
  detail::FrameHeader h;
  for (;;) {
    if (st.inPayload) {
      if (st.remaining != 0 && pos == len) return pos;
      if (!detail::continuePayload<R>(st, data, len, pos, sink)) return pos;
      continue;
    }
    if (pos == len) return pos;
    if (st.headerFill == 0) {
      // Fast path: header read in place; a whole frame is handled without touching state.
      FrameBytes<R>* p = data + pos;
      const size_t avail = len - pos;
      const ParseError e = detail::checkHeader<R>(p, avail, st, lim, h);
      if (e != ParseError::None) {
        detail::fail(st, e, sink);
        return pos;
      }
      if (h.size != 0 && avail >= h.size) {
        FrameBytes<R>* payload = p + h.size;
        const size_t n = static_cast<size_t>(h.length);
        if (avail - h.size >= h.length) {
          if (h.fin && h.opcode != Opcode::Continuation && !isControl(h.opcode)) {
            if constexpr (R == FrameRole::Server) unmask(payload, n, h.mask, 0);
            const bool text = h.opcode == Opcode::Text;
            if (text && !isValidUtf8(payload, n)) {
              detail::fail(st, ParseError::InvalidUtf8, sink);
              return pos;
            }
            pos += h.size + n;
            if (!sink.onData(payload, n, true, true, text)) return pos;
            continue;
          }
          if (isControl(h.opcode)) {
            if constexpr (R == FrameRole::Server) unmask(payload, n, h.mask, 0);
            pos += h.size + n;
            if (!detail::dispatchControl<R>(st, h.opcode, payload, n, sink)) return pos;
            continue;
          }
        }
        pos += h.size;
        detail::beginFrame<R>(st, h);
        continue;
      }
    }
    // Slow path: the header is split across reads; gather it in the state. Checking after
    // every byte reports errors exactly as the fast path would.
    while (pos < len) {
      st.header[st.headerFill++] = data[pos++];
      const ParseError e = detail::checkHeader<R>(st.header, st.headerFill, st, lim, h);
      if (e != ParseError::None) {
        detail::fail(st, e, sink);
        return pos;
      }
      if (h.size != 0 && st.headerFill == h.size) {
        st.headerFill = 0;
        detail::beginFrame<R>(st, h);
        break;
      }
    }
  }
}

}  // namespace lapps
