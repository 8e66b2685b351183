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
  size_t found = 0;
  forEachHeaderField(head, [&](std::string_view n, std::string_view value) {
    if (!equalsIgnoreCase(n, name)) return;
    if (found++ && !out.empty()) out.append(", ");
    out.append(value);
  });
  return found;
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
