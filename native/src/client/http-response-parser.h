// Incremental parser for one HTTP/1.1 response (RFC 9112) as lapps.http receives it: the
// status line, the header fields, and the body by Content-Length, chunked transfer coding
// or until the connection closes. No I/O: bytes go in by feed(), in pieces of any size; the
// result is the same however they were split.
//
// Accepted as RFC 9112 §2.2 allows a recipient to: a bare LF for CRLF (in the head, chunk
// size lines and trailers), 1xx interim responses (skipped). Refused: obs-fold (§5.2),
// whitespace before a field's colon (§5.1), Transfer-Encoding other than a final "chunked",
// Transfer-Encoding together with Content-Length (§6.3: a smuggling sign), differing
// Content-Length values, 101 (never asked for).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lapps {

enum class HttpResponseError : uint8_t {
  None,
  Malformed,        // status line, header, Content-Length or chunk syntax
  HeadersTooLarge,  // the head (or the trailers) over maxHeaderBytes, or too many fields
  BodyTooLarge,     // the body (declared or received) over maxBodyBytes
  ClosedEarly,      // the connection ended before the response was complete
};

struct HttpResponseLimits {
  size_t maxHeaderBytes = 64 * 1024;  // status line + fields + blank line; trailers too
  size_t maxHeaders = 100;            // field lines
  size_t maxBodyBytes = 8 * 1024 * 1024;
};

class HttpResponseParser {
 public:
  enum class Status : uint8_t { NeedMore, Complete, Failed };

  explicit HttpResponseParser(HttpResponseLimits limits = {}) : limits_(limits) {}

  // Starts over for the next response on the same connection. noBody: the request was
  // HEAD, so the response has no body whatever its fields say.
  void reset(bool noBody);

  // Consumes bytes of the response; returns how many it took (fewer than len only once the
  // response is Complete: the rest belongs to no response). Failed is sticky.
  size_t feed(const char* data, size_t len);
  // The peer closed the connection: completes a body read until close, fails otherwise.
  void finish();

  Status status() const { return status_; }
  HttpResponseError error() const { return error_; }
  // What was wrong, for the error message (a static string).
  const char* detail() const { return detail_; }
  // True once at least one byte of a response was fed (a reused connection that closed
  // before answering is safe to retry).
  bool started() const { return started_; }

  // Valid once Complete.
  int statusCode() const { return code_; }
  const std::string& reason() const { return reason_; }
  // Lower-case names in order of first appearance; repeated fields joined with ", ".
  const std::vector<std::pair<std::string, std::string>>& headers() const { return headers_; }
  std::string& body() { return body_; }
  // The connection may carry another request: HTTP/1.1, no "Connection: close", and the
  // body's end was known without the connection closing.
  bool keepAlive() const { return keepAlive_; }

 private:
  enum class State : uint8_t {
    StatusLine,
    Header,
    Body,       // Content-Length bytes left in remaining_
    BodyToEof,  // until the connection closes
    ChunkSize,
    ChunkData,
    ChunkDataEnd,  // the CRLF after a chunk's data
    Trailer,
    Done,
  };

  void fail(HttpResponseError e, const char* detail);
  // Appends c to the current line; true with the line (without CR LF) in line_ when it ends.
  bool takeLineByte(char c, size_t limit);
  void onStatusLine();
  void onHeaderLine();
  void onHeadersDone();
  void onChunkSizeLine();
  void complete();
  bool appendBody(const char* p, size_t n);

  HttpResponseLimits limits_;
  Status status_ = Status::NeedMore;
  HttpResponseError error_ = HttpResponseError::None;
  const char* detail_ = "";
  State state_ = State::StatusLine;
  bool noBody_ = false;
  bool started_ = false;
  bool sawCr_ = false;
  size_t headBytes_ = 0;  // bytes of the head (or the trailers) so far
  std::string line_;

  int code_ = 0;
  bool http11_ = false;
  std::string reason_;
  std::vector<std::pair<std::string, std::string>> headers_;
  size_t fieldLines_ = 0;
  std::string body_;
  uint64_t remaining_ = 0;
  bool keepAlive_ = false;
};

// "malformed response", "response too large", "closed early", for error messages.
const char* describe(HttpResponseError e);

}  // namespace lapps
