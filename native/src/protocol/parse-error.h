// Why the frame parser (protocol/frame-parser.h) rejected a byte stream, in the server's role
// (client frames) or the outbound client's (server frames). Each error indexes a table
// giving the close code to send and a short reason that fits in a close frame (< 123 bytes).
#pragma once

#include <cstddef>
#include <cstdint>

#include "protocol/close-code.h"

namespace lapps {

enum class ParseError : uint8_t {
  None,
  ReservedBits,            // RSV1-3 set, no extension was negotiated
  ReservedOpcode,          // opcode 3-7 or 11-15
  UnmaskedFrame,           // client frames must be masked
  ControlTooLong,          // control frame payload > 125
  ControlFragmented,       // control frame without FIN
  UnexpectedContinuation,  // continuation frame with no message in progress
  ExpectedContinuation,    // new text/binary frame while a fragmented message is open
  MessageTooBig,           // message would exceed ParserLimits::maxMessageSize
  InvalidUtf8,             // text message is not valid UTF-8
  BadCloseLength,          // close payload of exactly one byte
  InvalidCloseCode,        // close code not allowed on the wire
  InvalidCloseReason,      // close reason is not valid UTF-8
  BadLength,               // 64-bit payload length with its most significant bit set
  MaskedFrame,             // server frames must not be masked (RFC 6455 §5.1); client only
  FrameTooBig,             // data frame payload over ParserLimits::maxFrameSize
  TooManyFragments,        // more frames in one message than ParserLimits::maxFragments
};

namespace detail {

struct ParseErrorInfo {
  uint16_t closeCode;
  const char* reason;
};

// Indexed by ParseError; keep in enum order.
inline constexpr ParseErrorInfo kParseErrors[] = {
    {kNormal, "no error"},
    {kProtocolError, "reserved bits set"},
    {kProtocolError, "reserved opcode"},
    {kProtocolError, "client frame not masked"},
    {kProtocolError, "control frame payload too long"},
    {kProtocolError, "fragmented control frame"},
    {kProtocolError, "continuation frame without a message"},
    {kProtocolError, "expected a continuation frame"},
    {kTooBig, "message too big"},
    {kInvalidPayload, "invalid UTF-8 in text message"},
    {kProtocolError, "close payload of one byte"},
    {kProtocolError, "invalid close code"},
    {kInvalidPayload, "invalid UTF-8 in close reason"},
    {kProtocolError, "invalid payload length"},
    {kProtocolError, "server frame is masked"},
    {kTooBig, "frame too big"},
    {kPolicy, "too many fragments"},
};

static_assert(sizeof(kParseErrors) / sizeof(kParseErrors[0]) ==
              static_cast<size_t>(ParseError::TooManyFragments) + 1);

}  // namespace detail

// Close code to send for `e` (1002 framing, 1007 bad UTF-8, 1009 too big).
inline constexpr uint16_t closeCodeFor(ParseError e) {
  return detail::kParseErrors[static_cast<uint8_t>(e)].closeCode;
}

// Short ASCII reason, usable as the close frame's reason.
inline constexpr const char* describe(ParseError e) {
  return detail::kParseErrors[static_cast<uint8_t>(e)].reason;
}

}  // namespace lapps
