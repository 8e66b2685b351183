#include "protocol/header-fields.h"

#include "base/text.h"

namespace lapps {

namespace {

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

size_t joinHeaderValues(std::string_view head, std::string_view name, std::string& out) {
  size_t found = 0;
  bool requestLine = true;
  while (!head.empty()) {
    const size_t lf = head.find('\n');
    std::string_view line = head.substr(0, lf);
    head.remove_prefix(lf == std::string_view::npos ? head.size() : lf + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (requestLine) {
      requestLine = false;
      continue;
    }
    if (line.empty()) break;  // the blank line ends the head
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || !equalsIgnoreCase(line.substr(0, colon), name)) {
      continue;
    }
    const std::string_view value = trimOws(line.substr(colon + 1));
    if (found++ && !out.empty()) out.append(", ");
    out.append(value);
  }
  return found;
}

}  // namespace lapps
