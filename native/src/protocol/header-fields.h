// Reads one header's values out of a request head the handshake parser has validated
// (its syntax is known good: name ":" OWS value OWS, lines ending in CRLF or LF, no
// obs-fold). For the few headers the parser does not keep because only rare paths need
// them (X-Forwarded-For and Forwarded, from trusted proxies): scanning again there costs the
// common handshake nothing.
#pragma once

#include <string>
#include <string_view>

namespace lapps {

// Every value of header `name` (case-insensitive) in `head` (request line, headers, blank
// line), in order, joined with ", " as RFC 9110 §5.3 combines repeated fields. Appends to
// `out`; returns how many lines had the header.
size_t joinHeaderValues(std::string_view head, std::string_view name, std::string& out);

}  // namespace lapps
