// The parts of an HTTP request head a service reads at connect time (onConnect): the
// header fields, the query string's arguments and the cookies. Pure functions over bytes the
// handshake parser has already validated; nothing here allocates unless asked to decode.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/text.h"

namespace lapps {

// Calls fn(name, value) for every header field line of `head` (the request line first, then
// field lines, up to the blank line), in order; value without its surrounding whitespace.
// `head` must have passed HandshakeParser (so every line is well formed).
template <class F>
void forEachHeaderField(std::string_view head, F&& fn) {
  size_t pos = head.find('\n');  // skip the request line
  while (pos != std::string_view::npos && pos + 1 < head.size()) {
    size_t start = pos + 1;
    size_t end = head.find('\n', start);
    std::string_view line =
        head.substr(start, end == std::string_view::npos ? head.npos : end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return;  // the blank line that ends the head
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
      fn(line.substr(0, colon), value);
    }
    pos = end;
  }
}

// Every value of header `name` (case-insensitive) in `head`, in order, joined with ", " as
// RFC 9110 §5.3 combines repeated fields. Appends to `out`; returns how many lines had the
// header. For the few headers the parser does not keep because only rare paths need them
// (X-Forwarded-For and Forwarded, from trusted proxies): scanning again there costs the
// common handshake nothing.
size_t joinHeaderValues(std::string_view head, std::string_view name, std::string& out);

// Every header field of `head` in order of first appearance: lower-case names; a repeated
// field's values joined with ", " (RFC 9110 §5.3). Appends to out.
void collectHeaderFields(std::string_view head,
                         std::vector<std::pair<std::string, std::string>>& out);

// The request target as sent: the second word of the request line.
std::string_view requestLineTarget(std::string_view head);

// Splits an origin-form target into its path and its query (without the '?'; empty when
// there is none). A fragment is not part of a request target.
void splitTarget(std::string_view target, std::string_view& path, std::string_view& query);

// application/x-www-form-urlencoded decoding (WHATWG URL): '+' is a space, %XX a byte; a
// '%' not followed by two hex digits stays as it is. Appends to out.
void decodeFormComponent(std::string_view in, std::string& out);

// Calls fn(key, value) for each '&'-separated pair of a query string, both decoded; a pair
// without '=' has an empty value; empty pairs ("a=1&&b=2") are skipped.
template <class F>
void forEachQueryArg(std::string_view query, F&& fn) {
  std::string key, value;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    key.clear();
    value.clear();
    decodeFormComponent(pair.substr(0, eq), key);
    if (eq != std::string_view::npos) decodeFormComponent(pair.substr(eq + 1), value);
    fn(std::string_view(key), std::string_view(value));
  }
}

// Calls fn(name, value) for each cookie of one Cookie header value (RFC 6265 §5.4:
// "name=value" pairs separated by ';'), whitespace trimmed, one pair of double quotes
// around a value removed; pairs without '=' or with an empty name are skipped.
template <class F>
void forEachCookie(std::string_view header, F&& fn) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = trimOws(pair.substr(0, eq));
    std::string_view value = trimOws(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (!name.empty()) fn(name, value);
  }
}

}  // namespace lapps
