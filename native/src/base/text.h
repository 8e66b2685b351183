// String building for error messages. One allocation, and it sidesteps GCC 12's false
// -Wrestrict on `"literal" + std::string&&` (GCC PR 105329).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace lapps {

inline std::string concatText(std::initializer_list<std::string_view> parts) {
  size_t n = 0;
  for (std::string_view p : parts) n += p.size();
  std::string s;
  s.reserve(n);
  for (std::string_view p : parts) s.append(p);
  return s;
}

}  // namespace lapps
