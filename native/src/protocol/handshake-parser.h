// Incremental parser for the client's opening handshake: an HTTP/1.1 GET with Upgrade
// (RFC 6455 §4.2.1, RFC 9112). It only validates and points into the caller's bytes; the
// response is built by handshake-response.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lapps {

enum class HandshakeError : uint8_t {
  None,
  Malformed,         // bad request line or header syntax
  MethodNotAllowed,  // a method other than GET
  HttpVersion,       // not HTTP/1.1 or a later 1.x
  HeadersTooLarge,   // no blank line within maxHeaderBytes
  TooManyHeaders,    // more than maxHeaders header lines
  MissingHost,
  NotWebSocket,  // no "Upgrade: websocket": a plain HTTP request, answered with 426
  BadUpgrade,    // Connection lacks the "upgrade" token
  BadKey,        // Sec-WebSocket-Key missing or not base64 of 16 bytes
  BadVersion,    // Sec-WebSocket-Version missing or not 13
  // Host (RFC 9112 §3.2), Origin (RFC 6454 §7.3), Sec-WebSocket-Key or -Version (RFC 6455
  // §11.3.1, §4.1) appears more than once: which one counts would be a guess.
  RepeatedField,
};

// HTTP status for a failed handshake (400, 405, 426, 431 or 505).
int httpStatusFor(HandshakeError e);
// Human-readable text for the response body.
const char* describe(HandshakeError e);

// Views into the buffer given to the latest HandshakeParser::parse() call. Fields whose
// header was absent are empty.
struct HandshakeRequest {
  // `target` is always in origin form ("/path?query"), the route: from an absolute-form
  // request line ("GET ws://host:port/path HTTP/1.1", RFC 9112 §3.2.2) it is the path and
  // query of the URI ("/" when it has no path: then a static string, not in the buffer),
  // and `host` is the URI's authority, which replaces the Host header (still required).
  std::string_view method, target, host, key, version;
  std::string_view protocols;   // first Sec-WebSocket-Protocol header
  std::string_view origin;      // first Origin header
  std::string_view extensions;  // first Sec-WebSocket-Extensions header
  // Bytes up to and including the blank line. Bytes after it are already WebSocket frames;
  // the caller must keep them.
  size_t headerBytes = 0;
};

class HandshakeParser {
 public:
  explicit HandshakeParser(size_t maxHeaderBytes = 8192, size_t maxHeaders = 64);

  enum class Status : uint8_t { Incomplete, Complete, Failed };

  // buf holds ALL bytes received so far on the connection, so len never shrinks (buf may
  // move between calls: the parser keeps offsets). Scanning resumes where the previous call
  // stopped. Once Complete or Failed, the status no longer changes.
  Status parse(const char* buf, size_t len);

  Status status() const { return status_; }
  // The request line is complete (and valid): target() may be used for routing.
  bool requestLineParsed() const { return requestLine_; }
  std::string_view target() const { return request_.target; }
  const HandshakeRequest& request() const { return request_; }
  HandshakeError error() const { return error_; }

 private:
  enum Field : uint8_t {
    kMethod,
    kTarget,
    kHost,
    kKey,
    kVersion,
    kProtocols,
    kOrigin,
    kExtensions
  };
  static constexpr int kFieldCount = 8;
  struct Span {
    size_t off = 0, len = 0;
    bool seen = false;
  };

  Status scan(const char* buf, size_t len);
  Status fail(HandshakeError e);
  HandshakeError parseRequestLine(std::string_view line, size_t off);
  // Absolute-form target: sets the target (path and query) and authority spans.
  HandshakeError parseAbsoluteTarget(std::string_view target, size_t off);
  HandshakeError parseHeaderLine(std::string_view line, size_t off);
  HandshakeError validate(const char* buf) const;
  void bind(const char* buf);

  size_t maxHeaderBytes_, maxHeaders_;
  size_t lineStart_ = 0;  // offset of the first unparsed line
  size_t scanned_ = 0;    // bytes already searched for a line end
  size_t headers_ = 0;
  Span spans_[kFieldCount];
  bool requestLine_ = false;
  bool upgradeWebSocket_ = false;   // some Upgrade header lists "websocket"
  bool connectionUpgrade_ = false;  // some Connection header lists "upgrade"
  Span authority_;                  // absolute-form target: its host[:port], used as the host
  bool rootTarget_ = false;         // absolute-form target without a path: the route is "/"
  Status status_ = Status::Incomplete;
  HandshakeError error_ = HandshakeError::None;
  HandshakeRequest request_;
};

}  // namespace lapps
