#include "protocol/handshake-parser.h"

#include <cstring>

#include "base/text.h"

namespace lapps {

namespace {

struct ErrorInfo {
  int status;
  const char* text;
};

// Indexed by HandshakeError; keep in enum order.
constexpr ErrorInfo kErrors[] = {
    {101, "ok"},
    {400, "malformed HTTP request"},
    {405, "method not allowed: a WebSocket handshake is a GET request"},
    {505, "HTTP/1.1 or later required"},
    {431, "request header too large"},
    {431, "too many header fields"},
    {400, "missing Host header"},
    {426, "this endpoint only accepts WebSocket connections"},
    {400, "Connection header must contain the token 'Upgrade'"},
    {400, "missing or invalid Sec-WebSocket-Key"},
    {426, "unsupported Sec-WebSocket-Version, 13 required"},
    {400, "Host, Origin, Sec-WebSocket-Key and Sec-WebSocket-Version may appear only once"},
};
static_assert(sizeof(kErrors) / sizeof(kErrors[0]) ==
              static_cast<size_t>(HandshakeError::RepeatedField) + 1);

// tchar of RFC 9110 §5.6.2: the characters of a method or a field name.
bool isTokenChar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!isTokenChar(static_cast<unsigned char>(c))) return false;
  return true;
}

bool equalsNoCase(std::string_view a, std::string_view lowerB) {
  if (a.size() != lowerB.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c | 0x20);
    if (c != lowerB[i]) return false;
  }
  return true;
}

// True if the comma-separated list `value` contains `lowerToken` (case-insensitive).
bool hasToken(std::string_view value, std::string_view lowerToken) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    if (equalsNoCase(trimOws(value.substr(0, comma)), lowerToken)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

bool isBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Base64 of exactly 16 bytes: 22 alphabet characters and "==". The unused low bits of the
// last character are not required to be zero (decoders ignore them).
bool isValidKey(std::string_view key) {
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (size_t i = 0; i < 22; ++i)
    if (!isBase64Char(key[i])) return false;
  return true;
}

}  // namespace

int httpStatusFor(HandshakeError e) {
  return kErrors[static_cast<uint8_t>(e)].status;
}
const char* describe(HandshakeError e) {
  return kErrors[static_cast<uint8_t>(e)].text;
}

HandshakeParser::HandshakeParser(size_t maxHeaderBytes, size_t maxHeaders)
    : maxHeaderBytes_(maxHeaderBytes), maxHeaders_(maxHeaders) {}

HandshakeParser::Status HandshakeParser::fail(HandshakeError e) {
  error_ = e;
  status_ = Status::Failed;
  return status_;
}

HandshakeParser::Status HandshakeParser::parse(const char* buf, size_t len) {
  if (status_ == Status::Incomplete) scan(buf, len);
  bind(buf);  // views always refer to the latest buf, even after a failure
  return status_;
}

HandshakeParser::Status HandshakeParser::scan(const char* buf, size_t len) {
  // Only the first maxHeaderBytes may hold the header; never look further.
  const size_t limit = len < maxHeaderBytes_ ? len : maxHeaderBytes_;
  while (scanned_ < limit) {
    const void* lf = std::memchr(buf + scanned_, '\n', limit - scanned_);
    if (lf == nullptr) {
      scanned_ = limit;
      break;
    }
    const size_t end = static_cast<size_t>(static_cast<const char*>(lf) - buf);
    size_t lineEnd = end;
    if (lineEnd > lineStart_ && buf[lineEnd - 1] == '\r') --lineEnd;  // CRLF or bare LF
    const size_t off = lineStart_;
    const std::string_view line(buf + off, lineEnd - off);
    scanned_ = lineStart_ = end + 1;
    HandshakeError e;
    if (!requestLine_) {
      if (line.empty()) continue;  // RFC 9112 §2.2: ignore empty lines before the request
      e = parseRequestLine(line, off);
    } else if (line.empty()) {
      request_.headerBytes = end + 1;
      e = validate(buf);
      if (e != HandshakeError::None) return fail(e);
      status_ = Status::Complete;
      return status_;
    } else if (++headers_ > maxHeaders_) {
      e = HandshakeError::TooManyHeaders;
    } else {
      e = parseHeaderLine(line, off);
    }
    if (e != HandshakeError::None) return fail(e);
  }
  // At len >= limit with no blank line yet, the header cannot end within the limit.
  if (len >= maxHeaderBytes_) return fail(HandshakeError::HeadersTooLarge);
  return status_;
}

HandshakeError HandshakeParser::parseRequestLine(std::string_view line, size_t off) {
  // request-line = method SP request-target SP HTTP-version, single spaces.
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return HandshakeError::Malformed;
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return HandshakeError::Malformed;
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!isToken(method)) return HandshakeError::Malformed;
  if (target.empty()) return HandshakeError::Malformed;
  for (char c : target)
    if (c <= ' ' || c >= 0x7F) return HandshakeError::Malformed;
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
    return HandshakeError::Malformed;
  if (method != "GET") return HandshakeError::MethodNotAllowed;
  if (version[5] != '1' || version[7] == '0') return HandshakeError::HttpVersion;
  spans_[kMethod] = {off, sp1, true};
  if (target[0] == '/') {
    spans_[kTarget] = {off + sp1 + 1, target.size(), true};  // origin-form: the route
  } else {
    HandshakeError e = parseAbsoluteTarget(target, off + sp1 + 1);
    if (e != HandshakeError::None) return e;
  }
  requestLine_ = true;
  return HandshakeError::None;
}

// absolute-form (RFC 9112 §3.2.2): scheme "://" authority path-abempty ["?" query]. A server
// must accept it; the route is its path and query, the host its authority.
HandshakeError HandshakeParser::parseAbsoluteTarget(std::string_view target, size_t off) {
  const size_t sep = target.find("://");
  if (sep == std::string_view::npos) return HandshakeError::Malformed;
  const std::string_view scheme = target.substr(0, sep);
  if (!equalsNoCase(scheme, "ws") && !equalsNoCase(scheme, "wss") &&
      !equalsNoCase(scheme, "http") && !equalsNoCase(scheme, "https"))
    return HandshakeError::Malformed;
  const size_t start = sep + 3;
  size_t end = target.find_first_of("/?#", start);
  if (end == std::string_view::npos) end = target.size();
  const std::string_view authority = target.substr(start, end - start);
  // userinfo is deprecated and a recipient should treat it as an error (RFC 9110 §4.2.4).
  if (authority.empty() || authority.find('@') != std::string_view::npos)
    return HandshakeError::Malformed;
  if (end < target.size() && target[end] == '#') return HandshakeError::Malformed;
  authority_ = {off + start, authority.size(), true};
  if (end < target.size() && target[end] == '/') {
    spans_[kTarget] = {off + end, target.size() - end, true};
  } else {
    rootTarget_ = true;  // "ws://host" or "ws://host?q": the path is "/" (RFC 9112 §3.2.1)
  }
  return HandshakeError::None;
}

HandshakeError HandshakeParser::parseHeaderLine(std::string_view line, size_t off) {
  // field-line = field-name ":" OWS field-value OWS. A leading space would be obs-fold and
  // a space before the colon is forbidden (RFC 9112 §5.1): both fail the token check.
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return HandshakeError::Malformed;
  const std::string_view name = line.substr(0, colon);
  if (!isToken(name)) return HandshakeError::Malformed;
  const std::string_view raw = line.substr(colon + 1);
  for (char ch : raw) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7F) return HandshakeError::Malformed;
  }
  const std::string_view value = trimOws(raw);
  const Span span{off + static_cast<size_t>(value.data() - line.data()), value.size(), true};
  auto keepFirst = [&](Field f) {
    if (!spans_[f].seen) spans_[f] = span;
  };
  auto once = [&](Field f) {
    if (spans_[f].seen) return HandshakeError::RepeatedField;
    spans_[f] = span;
    return HandshakeError::None;
  };
  switch (name.size()) {
    case 4:
      if (equalsNoCase(name, "host")) return once(kHost);
      break;
    case 6:
      if (equalsNoCase(name, "origin")) return once(kOrigin);
      break;
    case 7:
      if (equalsNoCase(name, "upgrade") && hasToken(value, "websocket")) upgradeWebSocket_ = true;
      break;
    case 10:
      if (equalsNoCase(name, "connection") && hasToken(value, "upgrade")) connectionUpgrade_ = true;
      break;
    case 17:
      if (equalsNoCase(name, "sec-websocket-key")) return once(kKey);
      break;
    case 21:
      if (equalsNoCase(name, "sec-websocket-version")) return once(kVersion);
      break;
    case 22:
      if (equalsNoCase(name, "sec-websocket-protocol")) keepFirst(kProtocols);
      break;
    case 24:
      if (equalsNoCase(name, "sec-websocket-extensions")) keepFirst(kExtensions);
      break;
    default:
      break;
  }
  return HandshakeError::None;
}

// Method and HTTP version were checked with the request line; the rest in this order.
HandshakeError HandshakeParser::validate(const char* buf) const {
  auto view = [buf](const Span& s) { return std::string_view(buf + s.off, s.len); };
  if (!spans_[kHost].seen || spans_[kHost].len == 0) return HandshakeError::MissingHost;
  if (!upgradeWebSocket_) return HandshakeError::NotWebSocket;
  if (!connectionUpgrade_) return HandshakeError::BadUpgrade;
  if (!spans_[kVersion].seen || view(spans_[kVersion]) != "13") return HandshakeError::BadVersion;
  if (!spans_[kKey].seen || !isValidKey(view(spans_[kKey]))) return HandshakeError::BadKey;
  return HandshakeError::None;
}

void HandshakeParser::bind(const char* buf) {
  std::string_view* fields[kFieldCount] = {
      &request_.method,  &request_.target,    &request_.host,   &request_.key,
      &request_.version, &request_.protocols, &request_.origin, &request_.extensions};
  for (int f = 0; f < kFieldCount; ++f)
    if (spans_[f].seen) *fields[f] = std::string_view(buf + spans_[f].off, spans_[f].len);
  if (rootTarget_) request_.target = "/";
  // The authority of an absolute-form target replaces the Host header (RFC 9112 §3.2.2).
  if (authority_.seen) request_.host = std::string_view(buf + authority_.off, authority_.len);
}

}  // namespace lapps
