#include "client/http-response-parser.h"

#include <algorithm>
#include <limits>

#include "base/text.h"

namespace lapps {

namespace {

// A chunk size line with its extensions (which are ignored) may be this long.
constexpr size_t kMaxChunkLine = 4096;

bool isTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool isWs(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && isWs(s.front())) s.remove_prefix(1);
  while (!s.empty() && isWs(s.back())) s.remove_suffix(1);
  return s;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Does the comma-separated list hold `token` (case-insensitive)?
bool listHas(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    if (equalsIgnoreCase(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

const char* describe(HttpResponseError e) {
  switch (e) {
    case HttpResponseError::None:
      return "no error";
    case HttpResponseError::Malformed:
      return "malformed response";
    case HttpResponseError::HeadersTooLarge:
    case HttpResponseError::BodyTooLarge:
      return "response too large";
    case HttpResponseError::ClosedEarly:
      return "closed early";
  }
  return "unknown error";
}

void HttpResponseParser::reset(bool noBody) {
  status_ = Status::NeedMore;
  error_ = HttpResponseError::None;
  detail_ = "";
  state_ = State::StatusLine;
  noBody_ = noBody;
  started_ = false;
  sawCr_ = false;
  headBytes_ = 0;
  line_.clear();
  code_ = 0;
  http11_ = false;
  reason_.clear();
  headers_.clear();
  fieldLines_ = 0;
  body_.clear();
  remaining_ = 0;
  keepAlive_ = false;
}

void HttpResponseParser::fail(HttpResponseError e, const char* detail) {
  status_ = Status::Failed;
  error_ = e;
  detail_ = detail;
  state_ = State::Done;
}

void HttpResponseParser::complete() {
  status_ = Status::Complete;
  state_ = State::Done;
}

bool HttpResponseParser::takeLineByte(char c, size_t limit) {
  if (c == '\n') {
    sawCr_ = false;
    return true;
  }
  if (sawCr_) {
    fail(HttpResponseError::Malformed, "CR not followed by LF");
    return false;
  }
  if (c == '\r') {
    sawCr_ = true;
    return false;
  }
  if (line_.size() >= limit) {
    if (state_ == State::ChunkSize) {
      fail(HttpResponseError::Malformed, "chunk size line too long");
    } else {
      fail(HttpResponseError::HeadersTooLarge, "header section over the limit");
    }
    return false;
  }
  line_.push_back(c);
  return false;
}

bool HttpResponseParser::appendBody(const char* p, size_t n) {
  if (n > limits_.maxBodyBytes - body_.size()) {
    fail(HttpResponseError::BodyTooLarge, "body over the limit");
    return false;
  }
  body_.append(p, n);
  return true;
}

size_t HttpResponseParser::feed(const char* data, size_t len) {
  size_t i = 0;
  if (len > 0) started_ = true;
  while (i < len && status_ == Status::NeedMore) {
    switch (state_) {
      case State::StatusLine:
      case State::Header:
      case State::Trailer: {
        // The head's budget counts every byte, line endings too.
        const size_t left =
            limits_.maxHeaderBytes > headBytes_ ? limits_.maxHeaderBytes - headBytes_ : 0;
        const char c = data[i++];
        ++headBytes_;
        if (left == 0) {
          fail(HttpResponseError::HeadersTooLarge, "header section over the limit");
          break;
        }
        if (!takeLineByte(c, limits_.maxHeaderBytes)) break;
        if (state_ == State::StatusLine) {
          onStatusLine();
        } else if (state_ == State::Header) {
          onHeaderLine();
        } else if (line_.empty()) {
          complete();  // trailer fields are read and dropped
        } else if (line_.find(':') == std::string::npos || isWs(line_[0])) {
          fail(HttpResponseError::Malformed, "bad trailer field");
        }
        line_.clear();
        break;
      }
      case State::ChunkSize:
      case State::ChunkDataEnd: {
        if (!takeLineByte(data[i++], kMaxChunkLine)) break;
        if (state_ == State::ChunkSize) {
          onChunkSizeLine();
        } else if (!line_.empty()) {
          fail(HttpResponseError::Malformed, "chunk data longer than its size");
        } else {
          state_ = State::ChunkSize;
        }
        line_.clear();
        break;
      }
      case State::Body:
      case State::ChunkData: {
        const size_t n = size_t(std::min<uint64_t>(remaining_, len - i));
        if (!appendBody(data + i, n)) break;
        i += n;
        remaining_ -= n;
        if (remaining_ == 0) {
          if (state_ == State::Body) {
            complete();
          } else {
            state_ = State::ChunkDataEnd;
          }
        }
        break;
      }
      case State::BodyToEof:
        if (appendBody(data + i, len - i)) i = len;
        break;
      case State::Done:
        return i;
    }
  }
  return i;
}

void HttpResponseParser::finish() {
  if (status_ != Status::NeedMore) return;
  if (state_ == State::BodyToEof) {
    complete();
    return;
  }
  switch (state_) {
    case State::StatusLine:
      fail(HttpResponseError::ClosedEarly, started_ ? "connection closed in the status line"
                                                    : "connection closed before a response");
      return;
    case State::Header:
      fail(HttpResponseError::ClosedEarly, "connection closed in the header section");
      return;
    default:
      fail(HttpResponseError::ClosedEarly, "connection closed in the body");
      return;
  }
}

void HttpResponseParser::onStatusLine() {
  std::string_view l = line_;
  if (l.empty()) return;  // empty lines before the status line are skipped
  // HTTP-version SP 3DIGIT [SP reason-phrase]
  if (l.size() < 12 || l.substr(0, 7) != "HTTP/1." || l[7] < '0' || l[7] > '9' || l[8] != ' ') {
    fail(HttpResponseError::Malformed, "bad status line");
    return;
  }
  http11_ = l[7] != '0';
  int code = 0;
  for (size_t k = 9; k < 12; ++k) {
    if (l[k] < '0' || l[k] > '9') {
      fail(HttpResponseError::Malformed, "bad status code");
      return;
    }
    code = code * 10 + (l[k] - '0');
  }
  if (code < 100 || code > 599 || (l.size() > 12 && l[12] != ' ')) {
    fail(HttpResponseError::Malformed, "bad status code");
    return;
  }
  for (char c : l.substr(12)) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) {
      fail(HttpResponseError::Malformed, "control character in the reason phrase");
      return;
    }
  }
  code_ = code;
  reason_.assign(l.size() > 13 ? l.substr(13) : std::string_view());
  state_ = State::Header;
}

void HttpResponseParser::onHeaderLine() {
  if (line_.empty()) {
    onHeadersDone();
    return;
  }
  if (isWs(line_[0])) {
    fail(HttpResponseError::Malformed, "obsolete line folding");
    return;
  }
  if (++fieldLines_ > limits_.maxHeaders) {
    fail(HttpResponseError::HeadersTooLarge, "too many header fields");
    return;
  }
  const std::string_view l = line_;
  const size_t colon = l.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    fail(HttpResponseError::Malformed, "bad header field");
    return;
  }
  std::string name;
  name.reserve(colon);
  for (char c : l.substr(0, colon)) {
    if (!isTokenChar(c)) {
      fail(HttpResponseError::Malformed, "bad header field name");
      return;
    }
    name.push_back(asciiLower(c));
  }
  const std::string_view value = trim(l.substr(colon + 1));
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) {
      fail(HttpResponseError::Malformed, "control character in a header value");
      return;
    }
  }
  for (auto& [n, v] : headers_) {
    if (n == name) {
      v.append(", ").append(value);
      return;
    }
  }
  headers_.emplace_back(std::move(name), std::string(value));
}

void HttpResponseParser::onHeadersDone() {
  if (code_ < 200) {
    if (code_ == 101) {
      fail(HttpResponseError::Malformed, "unexpected 101 Switching Protocols");
      return;
    }
    // An interim response: the final one follows. Its bytes still count against the head's
    // budget, so a stream of 1xx cannot go on forever.
    headers_.clear();
    fieldLines_ = 0;
    state_ = State::StatusLine;
    return;
  }
  const std::string* te = nullptr;
  const std::string* cl = nullptr;
  keepAlive_ = http11_;
  for (const auto& [n, v] : headers_) {
    if (n == "transfer-encoding") te = &v;
    if (n == "content-length") cl = &v;
    if (n == "connection" && listHas(v, "close")) keepAlive_ = false;
  }
  if (noBody_ || code_ == 204 || code_ == 304) {
    complete();
    return;
  }
  if (te) {
    if (cl) {
      fail(HttpResponseError::Malformed, "both Transfer-Encoding and Content-Length");
      return;
    }
    if (!equalsIgnoreCase(trim(*te), "chunked")) {
      fail(HttpResponseError::Malformed, "unsupported Transfer-Encoding");
      return;
    }
    state_ = State::ChunkSize;
    return;
  }
  if (cl) {
    // A list of equal values (fields repeated by an intermediary) counts as one.
    std::string_view list = *cl;
    bool first = true;
    uint64_t length = 0;
    while (true) {
      const size_t comma = list.find(',');
      const std::string_view item = trim(list.substr(0, comma));
      if (item.empty()) {
        fail(HttpResponseError::Malformed, "bad Content-Length");
        return;
      }
      uint64_t v = 0;
      for (char c : item) {
        if (c < '0' || c > '9') {
          fail(HttpResponseError::Malformed, "bad Content-Length");
          return;
        }
        if (v > (std::numeric_limits<uint64_t>::max() - 9) / 10) {
          fail(HttpResponseError::Malformed, "Content-Length overflows");
          return;
        }
        v = v * 10 + uint64_t(c - '0');
      }
      if (!first && v != length) {
        fail(HttpResponseError::Malformed, "differing Content-Length values");
        return;
      }
      first = false;
      length = v;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
    if (length > limits_.maxBodyBytes) {
      fail(HttpResponseError::BodyTooLarge, "Content-Length over the limit");
      return;
    }
    remaining_ = length;
    // What a header declares is not yet memory worth taking: the body grows as it arrives.
    body_.reserve(size_t(std::min<uint64_t>(length, 1 << 20)));
    if (length == 0) {
      complete();
    } else {
      state_ = State::Body;
    }
    return;
  }
  keepAlive_ = false;  // only the connection's end tells where the body ends
  state_ = State::BodyToEof;
}

void HttpResponseParser::onChunkSizeLine() {
  const std::string_view l = line_;
  uint64_t size = 0;
  size_t k = 0;
  for (; k < l.size(); ++k) {
    const int h = hexValue(l[k]);
    if (h < 0) break;
    if (size > (std::numeric_limits<uint64_t>::max() >> 4)) {
      fail(HttpResponseError::Malformed, "chunk size overflows");
      return;
    }
    size = (size << 4) | uint64_t(h);
  }
  if (k == 0) {
    fail(HttpResponseError::Malformed, "bad chunk size");
    return;
  }
  while (k < l.size() && isWs(l[k])) ++k;  // BWS before a chunk extension
  if (k < l.size() && l[k] != ';') {
    fail(HttpResponseError::Malformed, "bad chunk size");
    return;
  }
  for (; k < l.size(); ++k) {
    const auto u = static_cast<unsigned char>(l[k]);
    if ((u < 0x20 && l[k] != '\t') || u == 0x7F) {
      fail(HttpResponseError::Malformed, "control character in a chunk extension");
      return;
    }
  }
  if (size == 0) {
    headBytes_ = 0;  // trailers get a header section's budget of their own
    state_ = State::Trailer;
    return;
  }
  if (size > limits_.maxBodyBytes - body_.size()) {
    fail(HttpResponseError::BodyTooLarge, "body over the limit");
    return;
  }
  remaining_ = size;
  state_ = State::ChunkData;
}

}  // namespace lapps
