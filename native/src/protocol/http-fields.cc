#include "protocol/http-fields.h"

namespace lapps {

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

size_t joinHeaderValues(std::string_view head, std::string_view name, std::string& out) {
  // One pass over the lines; a line is compared only if the name would end at its colon
  // (a service's onConnect looks fields up one by one: this runs per lookup).
  size_t found = 0;
  size_t pos = head.find('\n');  // skip the request line
  while (pos != std::string_view::npos && pos + 1 < head.size()) {
    const size_t start = pos + 1;
    pos = head.find('\n', start);
    std::string_view line =
        head.substr(start, pos == std::string_view::npos ? head.npos : pos - start);
    if (line.empty() || line == "\r") break;  // the blank line that ends the head
    if (line.size() <= name.size() || line[name.size()] != ':' ||
        !equalsIgnoreCase(line.substr(0, name.size()), name)) {
      continue;
    }
    if (line.back() == '\r') line.remove_suffix(1);
    const std::string_view value = trimOws(line.substr(name.size() + 1));
    if (found++ && !out.empty()) out.append(", ");
    out.append(value);
  }
  return found;
}

void collectHeaderFields(std::string_view head,
                         std::vector<std::pair<std::string, std::string>>& out) {
  forEachHeaderField(head, [&out](std::string_view name, std::string_view value) {
    std::string lower(name);
    for (char& ch : lower) ch = asciiLower(ch);
    for (auto& [n, v] : out) {
      if (n == lower) {
        v.append(", ").append(value);
        return;
      }
    }
    out.emplace_back(std::move(lower), std::string(value));
  });
}

std::string_view requestLineTarget(std::string_view head) {
  size_t sp1 = head.find(' ');
  if (sp1 == std::string_view::npos) return {};
  size_t sp2 = head.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return {};
  return head.substr(sp1 + 1, sp2 - sp1 - 1);
}

void splitTarget(std::string_view target, std::string_view& path, std::string_view& query) {
  size_t hash = target.find('#');
  if (hash != std::string_view::npos) target = target.substr(0, hash);
  size_t q = target.find('?');
  if (q == std::string_view::npos) {
    path = target;
    query = {};
  } else {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
}

void decodeFormComponent(std::string_view in, std::string& out) {
  out.reserve(out.size() + in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < in.size() && hexValue(in[i + 1]) >= 0 &&
               hexValue(in[i + 2]) >= 0) {
      out.push_back(char(hexValue(in[i + 1]) * 16 + hexValue(in[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
}

}  // namespace lapps
