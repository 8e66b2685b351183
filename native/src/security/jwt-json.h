// A small strict JSON reader for what JWT verification must look at itself: the JOSE header,
// the registered claims and JWK objects. Services get the claims through lua/'s own JSON
// module; this one exists because security/ sits below lua/ and must not depend on Lua.
// Strict like lua/lua-json.cc (RFC 8259, UTF-8, no comments or trailing commas), and it
// refuses an object with a repeated member name: RFC 7515 section 4 lets a parser refuse
// them, and refusing means the checks here and the claims a service reads cannot disagree.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lapps::jwt {

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string str;
  std::vector<JsonValue> items;
  std::vector<std::pair<std::string, JsonValue>> members;

  // The member named `name` of an object, or nullptr.
  const JsonValue* get(std::string_view name) const;
  bool isString() const { return type == Type::kString; }
  bool isNumber() const { return type == Type::kNumber; }
  bool isObject() const { return type == Type::kObject; }
};

inline constexpr int kJsonMaxDepth = 32;

// Parses all of `text` into `out`; false with `err` set ("offset N: why") otherwise.
bool parseJson(std::string_view text, JsonValue& out, std::string& err,
               int maxDepth = kJsonMaxDepth);

}  // namespace lapps::jwt
