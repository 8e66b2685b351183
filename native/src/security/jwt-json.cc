#include "security/jwt-json.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "protocol/utf8-validator.h"

namespace lapps::jwt {

const JsonValue* JsonValue::get(std::string_view name) const {
  if (type != Type::kObject) return nullptr;
  for (const auto& m : members) {
    if (m.first == name) return &m.second;
  }
  return nullptr;
}

namespace {

class Reader {
 public:
  Reader(std::string_view s, int maxDepth) : s_(s), maxDepth_(maxDepth) {}

  bool document(JsonValue& out) {
    if (!value(out, 0)) return false;
    ws();
    return pos_ == s_.size() || fail("unexpected data after the value");
  }
  const std::string& error() const { return err_; }

 private:
  bool fail(const char* why) {
    err_ = "offset " + std::to_string(pos_) + ": " + why;
    return false;
  }
  void ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return fail("invalid literal");
    pos_ += word.size();
    return true;
  }

  bool value(JsonValue& out, int depth) {
    ws();
    if (pos_ >= s_.size()) return fail("unexpected end");
    char c = s_[pos_];
    switch (c) {
      case '{':
        return object(out, depth);
      case '[':
        return array(out, depth);
      case '"':
        out.type = JsonValue::Type::kString;
        return string(out.str);
      case 't':
        out.type = JsonValue::Type::kBool;
        out.boolean = true;
        return literal("true");
      case 'f':
        out.type = JsonValue::Type::kBool;
        return literal("false");
      case 'n':
        out.type = JsonValue::Type::kNull;
        return literal("null");
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return number(out);
        return fail("unexpected character");
    }
  }

  bool object(JsonValue& out, int depth) {
    if (depth >= maxDepth_) return fail("nested too deeply");
    out.type = JsonValue::Type::kObject;
    ++pos_;
    ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') return fail("member name expected");
      std::string name;
      if (!string(name)) return false;
      if (out.get(name)) return fail("repeated member name");
      ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') return fail("':' expected");
      ++pos_;
      out.members.emplace_back(std::move(name), JsonValue{});
      if (!value(out.members.back().second, depth + 1)) return false;
      ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return fail("',' or '}' expected");
    }
  }

  bool array(JsonValue& out, int depth) {
    if (depth >= maxDepth_) return fail("nested too deeply");
    out.type = JsonValue::Type::kArray;
    ++pos_;
    ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      out.items.emplace_back();
      if (!value(out.items.back(), depth + 1)) return false;
      ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return fail("',' or ']' expected");
    }
  }

  // RFC 8259 number grammar, checked here; the value is then read by strtod.
  bool number(JsonValue& out) {
    size_t start = pos_;
    auto digits = [&] {
      size_t from = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ > from;
    };
    if (s_[pos_] == '-') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
    } else if (!digits()) {
      return fail("invalid number");
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!digits()) return fail("invalid number");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!digits()) return fail("invalid number");
    }
    if (pos_ - start > 64) return fail("number too long");
    char buf[72];
    std::memcpy(buf, s_.data() + start, pos_ - start);
    buf[pos_ - start] = '\0';
    out.type = JsonValue::Type::kNumber;
    out.number = std::strtod(buf, nullptr);
    if (!std::isfinite(out.number)) return fail("number out of range");
    return true;
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool hex4(unsigned& v) {
    if (s_.size() - pos_ < 4) return fail("bad \\u escape");
    v = 0;
    for (int i = 0; i < 4; ++i) {
      int h = hex(s_[pos_ + i]);
      if (h < 0) return fail("bad \\u escape");
      v = v * 16 + static_cast<unsigned>(h);
    }
    pos_ += 4;
    return true;
  }
  static void utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  bool string(std::string& out) {
    ++pos_;  // the opening quote
    size_t rawStart = pos_;
    for (;;) {
      if (pos_ >= s_.size()) return fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') break;
      if (c < 0x20) return fail("control character in a string");
      if (c != '\\') {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      if (++pos_ >= s_.size()) return fail("unterminated string");
      char e = s_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          unsigned cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo = 0;
            if (s_.substr(pos_, 2) != "\\u") return fail("lone surrogate");
            pos_ += 2;
            if (!hex4(lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) return fail("lone surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return fail("lone surrogate");
          }
          utf8(out, cp);
          break;
        }
        default:
          return fail("bad escape");
      }
    }
    // The raw bytes between the quotes must be UTF-8 (escapes are ASCII, so checking
    // them raw is the same as checking the unescaped text's unescaped parts).
    if (!isValidUtf8(reinterpret_cast<const uint8_t*>(s_.data() + rawStart), pos_ - rawStart)) {
      return fail("string is not UTF-8");
    }
    ++pos_;  // the closing quote
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  int maxDepth_;
  std::string err_;
};

}  // namespace

bool parseJson(std::string_view text, JsonValue& out, std::string& err, int maxDepth) {
  out = JsonValue{};
  Reader r(text, maxDepth);
  if (r.document(out)) return true;
  err = r.error();
  return false;
}

}  // namespace lapps::jwt
