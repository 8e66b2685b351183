// A minimal self-made test framework: TEST("name") { ... } registers a case; CHECK* record
// failures and carry on, REQUIRE* record and leave the case. main.cc prints TAP.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace lapps::test {

using TestFn = void (*)();

struct TestCase {
  const char* name;
  TestFn fn;
};

std::vector<TestCase>& registry();
void recordFailure(const char* file, int line, const std::string& what);

struct Registrar {
  Registrar(const char* name, TestFn fn) { registry().push_back({name, fn}); }
};

// Printable form of a checked value for diagnostics; binary bytes are escaped.
template <class T>
std::string show(const T& v) {
  std::ostringstream os;
  if constexpr (std::is_same_v<T, bool>) {
    os << (v ? "true" : "false");
  } else if constexpr (std::is_enum_v<T>) {
    os << static_cast<int64_t>(v);
  } else if constexpr (std::is_integral_v<T>) {
    os << +v;
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    std::string_view s = v;
    os << '"';
    for (size_t i = 0; i < s.size() && i < 200; ++i) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c < 0x7F && c != '\\' && c != '"') {
        os << static_cast<char>(c);
      } else {
        static const char* hex = "0123456789abcdef";
        os << "\\x" << hex[c >> 4] << hex[c & 15];
      }
    }
    if (s.size() > 200) os << "...(" << s.size() << " bytes)";
    os << '"';
  } else {
    os << v;
  }
  return os.str();
}

template <class A, class B>
bool checkEq(const A& a, const B& b, const char* ea, const char* eb, const char* file, int line) {
  if (a == b) return true;
  recordFailure(file, line,
                std::string(ea) + " == " + eb + " (got " + show(a) + " vs " + show(b) + ")");
  return false;
}

}  // namespace lapps::test

#define LAPPS_CAT2(a, b) a##b
#define LAPPS_CAT(a, b) LAPPS_CAT2(a, b)
#define LAPPS_TEST_IMPL(name, fn)                                    \
  static void fn();                                                  \
  static const ::lapps::test::Registrar LAPPS_CAT(fn, _r){name, fn}; \
  static void fn()
#define TEST(name) LAPPS_TEST_IMPL(name, LAPPS_CAT(lappsTest_, __COUNTER__))

// Records a failure with a message (e.g. which table row failed).
#define FAIL(msg) ::lapps::test::recordFailure(__FILE__, __LINE__, (msg))
#define CHECK(cond) \
  ((cond) ? true : (::lapps::test::recordFailure(__FILE__, __LINE__, #cond), false))
#define CHECK_EQ(a, b) ::lapps::test::checkEq((a), (b), #a, #b, __FILE__, __LINE__)
#define REQUIRE(cond)         \
  do {                        \
    if (!CHECK(cond)) return; \
  } while (0)
#define REQUIRE_EQ(a, b)         \
  do {                           \
    if (!CHECK_EQ(a, b)) return; \
  } while (0)
