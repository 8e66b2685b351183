#include "security/origin.h"

#include <algorithm>

#include "base/text.h"

namespace lapps {

namespace {

bool isAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

uint16_t defaultPort(std::string_view scheme) {
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  return 0;
}

// host [":" port] as found after "scheme://" or in a Host header. A bracketed IPv6 literal
// keeps its brackets; names are letters, digits, '-', '_' and '.' (IDNs arrive as punycode).
bool parseHostPort(std::string_view s, uint16_t fallbackPort, std::string& host, uint16_t& port) {
  size_t end;
  if (!s.empty() && s[0] == '[') {
    end = s.find(']');
    if (end == std::string_view::npos || end < 2) return false;
    for (size_t i = 1; i < end; ++i) {
      char c = s[i];
      if (!(isDigit(c) || (asciiLower(c) >= 'a' && asciiLower(c) <= 'f') || c == ':' || c == '.')) {
        return false;
      }
    }
    ++end;
  } else {
    end = 0;
    while (end < s.size() && s[end] != ':') {
      char c = s[end];
      if (!(isAlpha(c) || isDigit(c) || c == '-' || c == '_' || c == '.')) return false;
      ++end;
    }
    if (end == 0) return false;
  }
  host.assign(s.substr(0, end));
  std::transform(host.begin(), host.end(), host.begin(), asciiLower);
  port = fallbackPort;
  if (end == s.size()) return true;
  if (s[end] != ':' || end + 1 == s.size() || s.size() - end - 1 > 5) return false;
  uint32_t p = 0;
  for (size_t i = end + 1; i < s.size(); ++i) {
    if (!isDigit(s[i])) return false;
    p = p * 10 + uint32_t(s[i] - '0');
  }
  if (p == 0 || p > 65535) return false;
  port = uint16_t(p);
  return true;
}

// "scheme://" prefix; the rest is returned in `rest`.
bool parseScheme(std::string_view text, std::string& scheme, std::string_view& rest) {
  size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0 || !isAlpha(text[0])) return false;
  for (size_t i = 1; i < sep; ++i) {
    char c = text[i];
    if (!(isAlpha(c) || isDigit(c) || c == '+' || c == '-' || c == '.')) return false;
  }
  scheme.assign(text.substr(0, sep));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), asciiLower);
  rest = text.substr(sep + 3);
  return true;
}

}  // namespace

bool parseOrigin(std::string_view text, Origin& out) {
  std::string_view rest;
  if (!parseScheme(text, out.scheme, rest)) return false;
  return parseHostPort(rest, defaultPort(out.scheme), out.host, out.port);
}

OriginPolicy OriginPolicy::sameOrigin(bool allowMissing) {
  OriginPolicy p;
  p.sameOrigin_ = true;
  p.allowMissing_ = allowMissing;
  return p;
}

bool OriginPolicy::fromList(const std::vector<std::string>& patterns, bool allowMissing,
                            OriginPolicy& out, std::string& error, bool alsoSameOrigin) {
  OriginPolicy p;
  p.sameOrigin_ = alsoSameOrigin;
  p.allowMissing_ = allowMissing;
  for (const std::string& pat : patterns) {
    if (pat == "*") {
      p.any_ = true;
      continue;
    }
    if (pat == "null") {
      p.allowNull_ = true;
      continue;
    }
    std::string scheme;
    std::string_view rest;
    if (parseScheme(pat, scheme, rest) && rest.starts_with("*.")) {
      Wildcard w;
      w.scheme = scheme;
      std::string host;
      if (parseHostPort(rest.substr(1), defaultPort(scheme), host, w.port) && host.size() > 1 &&
          host[0] == '.' && host[1] != '.' && host.back() != '.') {
        w.suffix = host;
        p.wildcards_.push_back(std::move(w));
        continue;
      }
    } else {
      Origin o;
      if (parseOrigin(pat, o)) {
        p.exact_.push_back(std::move(o));
        continue;
      }
    }
    error.assign("origin \"")
        .append(pat)
        .append(
            "\": expected \"*\", \"null\", \"scheme://host[:port]\" or "
            "\"scheme://*.domain[:port]\"");
    return false;
  }
  out = std::move(p);
  return true;
}

bool OriginPolicy::allows(std::string_view origin, std::string_view host, bool tls) const {
  if (origin.empty()) return allowMissing_;
  if (any_) return true;
  if (origin == "null") return allowNull_;
  Origin o;
  if (!parseOrigin(origin, o)) return false;
  if (sameOrigin_) {
    std::string h;
    uint16_t port;
    if (parseHostPort(host, tls ? 443 : 80, h, port) && h == o.host && port == o.port) return true;
  }
  for (const Origin& e : exact_) {
    if (e.scheme == o.scheme && e.host == o.host && e.port == o.port) return true;
  }
  for (const Wildcard& w : wildcards_) {
    if (w.scheme == o.scheme && w.port == o.port && o.host.size() > w.suffix.size() &&
        o.host.ends_with(w.suffix)) {
      return true;
    }
  }
  return false;
}

}  // namespace lapps
