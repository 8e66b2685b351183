// Client-side RFC 6455 frame parser: validates frames received from a server (unmasked)
// and delivers them to a sink. No I/O and no allocation; the same sink contract as the
// server-side parser (protocol/frame-parser.h), minus unmasking:
//   bool onData(const uint8_t* data, size_t len, bool first, bool last, bool text);
//     A message that is one frame wholly inside the buffer arrives in ONE call (first =
//     last = true) pointing into the caller's buffer; otherwise in chunks as bytes come.
//     An empty message or empty final frame still gives a call with len 0, last = true.
//   bool onPing(const uint8_t* payload, size_t len);
//   bool onPong(const uint8_t* payload, size_t len);
//   bool onClose(uint16_t code, const uint8_t* reason, size_t len);  // code 1005 if empty
//   void onError(ServerFrameError e);  // once, as the parser's last action
// A false return means "stop now" (the client closed or was destroyed): parse() returns
// without touching the parser again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "protocol/close-code.h"
#include "protocol/opcode.h"
#include "protocol/parse-error.h"
#include "protocol/utf8-validator.h"

namespace lapps {

// The same errors, close codes and reasons as the server's parser (MaskedFrame is the one
// only this side reports).
using ServerFrameError = ParseError;

class ServerFrameParser {
 public:
  explicit ServerFrameParser(uint64_t maxMessageSize) : maxMessage_(maxMessageSize) {}

  // Parses data[0, len). Returns the bytes consumed: len, or fewer if the sink stopped or
  // an error was found. After an error, later calls consume nothing.
  template <class Sink>
  size_t parse(const uint8_t* data, size_t len, Sink& sink);

  ServerFrameError error() const { return error_; }
  // Payload bytes of the current frame not delivered yet (a reassembly size hint).
  uint64_t frameRemaining() const { return remaining_; }

 private:
  struct Header {
    uint64_t length;
    uint8_t size;  // 2, 4 or 10; 0 while fewer than 2 bytes are known
    Opcode opcode;
    bool fin;
  };

  ServerFrameError checkHeader(const uint8_t* p, size_t avail, Header& h) const;
  void beginFrame(const Header& h);
  template <class Sink>
  bool fail(ServerFrameError e, Sink& sink);
  template <class Sink>
  bool payload(const uint8_t* data, size_t len, size_t& pos, Sink& sink);
  template <class Sink>
  bool dispatchControl(const uint8_t* p, size_t n, Sink& sink);

  uint64_t maxMessage_;
  uint64_t remaining_ = 0;     // payload bytes of the current frame not yet seen
  uint64_t messageBytes_ = 0;  // declared payload of the open message, current frame incl.
  Utf8Validator utf8_;
  ServerFrameError error_ = ServerFrameError::None;
  Opcode opcode_ = Opcode::Continuation;   // current frame
  Opcode message_ = Opcode::Continuation;  // Text/Binary of the open message, else none
  bool fin_ = false;
  bool inPayload_ = false;       // header consumed, payload (possibly empty) still to go
  bool messageStarted_ = false;  // onData(first = true) was called for the open message
  uint8_t headerFill_ = 0;       // header bytes held (header split across reads)
  uint8_t header_[10] = {};
  uint8_t controlFill_ = 0;
  uint8_t control_[125] = {};
};

// Validates the header bytes known so far in wire order, so the error reported does not
// depend on how the stream was split. Complete when h.size != 0 && avail >= h.size.
inline ServerFrameError ServerFrameParser::checkHeader(const uint8_t* p, size_t avail,
                                                       Header& h) const {
  h.size = 0;
  const uint8_t b0 = p[0];
  if (b0 & 0x70) return ServerFrameError::ReservedBits;
  const uint8_t op = b0 & 0x0F;
  if ((op > 2 && op < 8) || op > 10) return ServerFrameError::ReservedOpcode;
  const bool fin = (b0 & 0x80) != 0;
  const bool control = (op & 8) != 0;
  if (control) {
    if (!fin) return ServerFrameError::ControlFragmented;
  } else if (op == 0) {
    if (message_ == Opcode::Continuation) return ServerFrameError::UnexpectedContinuation;
  } else if (message_ != Opcode::Continuation) {
    return ServerFrameError::ExpectedContinuation;
  }
  if (avail < 2) return ServerFrameError::None;
  const uint8_t b1 = p[1];
  if (b1 & 0x80) return ServerFrameError::MaskedFrame;
  const uint8_t len7 = b1 & 0x7F;
  if (control && len7 > 125) return ServerFrameError::ControlTooLong;
  h.size = len7 < 126 ? 2 : len7 == 126 ? 4 : 10;
  h.opcode = static_cast<Opcode>(op);
  h.fin = fin;
  if (avail < h.size) return ServerFrameError::None;
  uint64_t length = len7;
  if (len7 == 126) {
    length = (uint64_t{p[2]} << 8) | p[3];
  } else if (len7 == 127) {
    length = 0;
    for (int i = 2; i < 10; ++i) length = (length << 8) | p[i];
    if (length >> 63) return ServerFrameError::BadLength;
  }
  if (!control) {
    // Refused before any payload is delivered; overflow-safe since messageBytes_ <= max.
    const uint64_t before = op == 0 ? messageBytes_ : 0;
    if (length > maxMessage_ - before) return ServerFrameError::MessageTooBig;
  }
  h.length = length;
  return ServerFrameError::None;
}

inline void ServerFrameParser::beginFrame(const Header& h) {
  opcode_ = h.opcode;
  fin_ = h.fin;
  remaining_ = h.length;
  inPayload_ = true;
  if (isControl(h.opcode)) {
    controlFill_ = 0;
    return;
  }
  if (h.opcode != Opcode::Continuation) {
    message_ = h.opcode;
    messageBytes_ = 0;
    messageStarted_ = false;
    utf8_.reset();
  }
  messageBytes_ += h.length;
}

template <class Sink>
bool ServerFrameParser::fail(ServerFrameError e, Sink& sink) {
  error_ = e;
  sink.onError(e);
  return false;
}

template <class Sink>
bool ServerFrameParser::dispatchControl(const uint8_t* p, size_t n, Sink& sink) {
  if (opcode_ == Opcode::Ping) return sink.onPing(p, n);
  if (opcode_ == Opcode::Pong) return sink.onPong(p, n);
  if (n == 0) return sink.onClose(kNoStatus, p, 0);
  if (n == 1) return fail(ServerFrameError::BadCloseLength, sink);
  const uint16_t code = static_cast<uint16_t>((p[0] << 8) | p[1]);
  if (!isValidCloseCode(code)) return fail(ServerFrameError::InvalidCloseCode, sink);
  if (!isValidUtf8(p + 2, n - 2)) return fail(ServerFrameError::InvalidCloseReason, sink);
  return sink.onClose(code, p + 2, n - 2);
}

// Consumes as much of the current frame's payload as data[pos, len) holds.
template <class Sink>
bool ServerFrameParser::payload(const uint8_t* data, size_t len, size_t& pos, Sink& sink) {
  const size_t avail = len - pos;
  const size_t n = remaining_ < avail ? static_cast<size_t>(remaining_) : avail;
  const uint8_t* p = data + pos;
  pos += n;
  remaining_ -= n;
  if (isControl(opcode_)) {
    if (n != 0) std::memcpy(control_ + controlFill_, p, n);
    controlFill_ = static_cast<uint8_t>(controlFill_ + n);
    if (remaining_ != 0) return true;
    inPayload_ = false;
    return dispatchControl(control_, controlFill_, sink);
  }
  const bool frameDone = remaining_ == 0;
  const bool last = frameDone && fin_;
  const bool text = message_ == Opcode::Text;
  if (text && (!utf8_.feed(p, n) || (last && !utf8_.complete())))
    return fail(ServerFrameError::InvalidUtf8, sink);
  if (frameDone) inPayload_ = false;
  if (n == 0 && !last) return true;
  const bool first = !messageStarted_;
  messageStarted_ = !last;
  if (last) message_ = Opcode::Continuation;
  return sink.onData(p, n, first, last, text);
}

template <class Sink>
size_t ServerFrameParser::parse(const uint8_t* data, size_t len, Sink& sink) {
  if (error_ != ServerFrameError::None) return 0;
  size_t pos = 0;
  Header h;
  for (;;) {
    if (inPayload_) {
      if (remaining_ != 0 && pos == len) return pos;
      if (!payload(data, len, pos, sink)) return pos;
      continue;
    }
    if (pos == len) return pos;
    if (headerFill_ == 0) {
      // Fast path: the whole header is in this buffer.
      const size_t avail = len - pos;
      const ServerFrameError e = checkHeader(data + pos, avail, h);
      if (e != ServerFrameError::None) {
        fail(e, sink);
        return pos;
      }
      if (h.size != 0 && avail >= h.size) {
        pos += h.size;
        beginFrame(h);
        continue;
      }
    }
    // The header is split across reads: gather it, checking after every byte so errors
    // come out exactly as on the fast path.
    while (pos < len) {
      header_[headerFill_++] = data[pos++];
      const ServerFrameError e = checkHeader(header_, headerFill_, h);
      if (e != ServerFrameError::None) {
        fail(e, sink);
        return pos;
      }
      if (h.size != 0 && headerFill_ == h.size) {
        headerFill_ = 0;
        beginFrame(h);
        break;
      }
    }
  }
}

}  // namespace lapps
