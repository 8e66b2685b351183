// Text helpers every layer may use: ASCII case folding (HTTP names, URL schemes and hosts
// are ASCII and case-insensitive) and string building for error messages.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace lapps {

inline char asciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Equal but for the case of ASCII letters.
inline bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (asciiLower(a[i]) != asciiLower(b[i])) return false;
  }
  return true;
}

// Without the optional whitespace (spaces and tabs, RFC 9110 §5.6.3 OWS) around it.
inline std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// String building for error messages. One allocation, and it sidesteps GCC 12's false
// -Wrestrict on `"literal" + std::string&&` (GCC PR 105329).
inline std::string concatText(std::initializer_list<std::string_view> parts) {
  size_t n = 0;
  for (std::string_view p : parts) n += p.size();
  std::string s;
  s.reserve(n);
  for (std::string_view p : parts) s.append(p);
  return s;
}

}  // namespace lapps
