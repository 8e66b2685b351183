// JSON (RFC 8259) <-> Lua values. The parser is strict: no comments, no trailing commas,
// no leading zeros or bare NaN; strings must be UTF-8 and may use \u escapes with
// surrogate pairs. Integers keep all 64 bits; other numbers are doubles.
#include <lua.hpp>

#include <charconv>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "lua/lua-value.h"
#include "protocol/utf8-validator.h"

namespace lapps {

namespace {

class Parser {
 public:
  Parser(lua_State* L, const char* p, size_t n, int maxDepth)
      : L_(L), p_(p), n_(n), maxDepth_(maxDepth) {}

  bool document() {
    if (!value(0)) return false;
    ws();
    return pos_ == n_ || fail("unexpected data after the value");
  }

  // "line:column: message" (both 1-based, columns in bytes).
  std::string error() const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < errPos_ && i < n_; ++i) {
      if (p_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return std::to_string(line) + ":" + std::to_string(col) + ": " + why_;
  }

 private:
  bool fail(const char* why) { return failAt(why, pos_); }
  bool failAt(const char* why, size_t at) {
    why_ = why;
    errPos_ = at;
    return false;
  }
  void ws() {
    while (pos_ < n_ &&
           (p_[pos_] == ' ' || p_[pos_] == '\t' || p_[pos_] == '\n' || p_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool literal(const char* word, size_t len) {
    if (n_ - pos_ < len || std::memcmp(p_ + pos_, word, len) != 0) {
      return fail("invalid literal");
    }
    pos_ += len;
    return true;
  }

  bool value(int depth) {
    ws();
    if (pos_ >= n_) return fail("unexpected end of input");
    if (!lua_checkstack(L_, 4)) return fail("Lua stack overflow");
    switch (p_[pos_]) {
      case '{':
        return object(depth);
      case '[':
        return array(depth);
      case '"':
        return string();
      case 't':
        if (!literal("true", 4)) return false;
        lua_pushboolean(L_, 1);
        return true;
      case 'f':
        if (!literal("false", 5)) return false;
        lua_pushboolean(L_, 0);
        return true;
      case 'n':
        if (!literal("null", 4)) return false;
        lua_pushlightuserdata(L_, nullValue());
        return true;
      default:
        if (p_[pos_] == '-' || (p_[pos_] >= '0' && p_[pos_] <= '9')) return number();
        return fail("unexpected character");
    }
  }

  bool array(int depth) {
    if (depth >= maxDepth_) return fail("nesting too deep");
    ++pos_;
    lua_createtable(L_, 0, 0);
    pushArrayMeta(L_);
    lua_setmetatable(L_, -2);
    ws();
    if (pos_ < n_ && p_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (int i = 1;; ++i) {
      if (!value(depth + 1)) return false;
      lua_rawseti(L_, -2, i);
      ws();
      if (pos_ >= n_) return fail("unexpected end of input in array");
      char c = p_[pos_++];
      if (c == ']') return true;
      if (c != ',') return failAt("expected ',' or ']'", pos_ - 1);
    }
  }

  bool object(int depth) {
    if (depth >= maxDepth_) return fail("nesting too deep");
    ++pos_;
    lua_createtable(L_, 0, 0);
    pushObjectMeta(L_);
    lua_setmetatable(L_, -2);
    ws();
    if (pos_ < n_ && p_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      ws();
      if (pos_ >= n_ || p_[pos_] != '"') return fail("expected a string key");
      if (!string()) return false;
      ws();
      if (pos_ >= n_ || p_[pos_] != ':') return fail("expected ':'");
      ++pos_;
      if (!value(depth + 1)) return false;
      lua_rawset(L_, -3);  // a repeated key keeps its last value
      ws();
      if (pos_ >= n_) return fail("unexpected end of input in object");
      char c = p_[pos_++];
      if (c == '}') return true;
      if (c != ',') return failAt("expected ',' or '}'", pos_ - 1);
    }
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool hex4(size_t at, unsigned& out) {
    if (n_ - at < 4) return failAt("truncated \\u escape", at);
    out = 0;
    for (size_t i = 0; i < 4; ++i) {
      int h = hex(p_[at + i]);
      if (h < 0) return failAt("invalid \\u escape", at);
      out = out * 16 + unsigned(h);
    }
    return true;
  }
  static void utf8(std::string& s, unsigned cp) {
    if (cp < 0x80) {
      s += char(cp);
    } else if (cp < 0x800) {
      s += char(0xC0 | (cp >> 6));
      s += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += char(0xE0 | (cp >> 12));
      s += char(0x80 | ((cp >> 6) & 0x3F));
      s += char(0x80 | (cp & 0x3F));
    } else {
      s += char(0xF0 | (cp >> 18));
      s += char(0x80 | ((cp >> 12) & 0x3F));
      s += char(0x80 | ((cp >> 6) & 0x3F));
      s += char(0x80 | (cp & 0x3F));
    }
  }

  bool string() {
    size_t start = ++pos_;
    bool escaped = false;
    size_t i = start;
    for (;; ++i) {
      if (i >= n_) return failAt("unterminated string", start - 1);
      unsigned char c = static_cast<unsigned char>(p_[i]);
      if (c == '"') break;
      if (c < 0x20) return failAt("control character in string", i);
      if (c == '\\') {
        escaped = true;
        ++i;  // the escaped character is never the closing quote
      }
    }
    // Escapes are ASCII, so checking the raw span checks every unescaped character.
    if (!isValidUtf8(reinterpret_cast<const uint8_t*>(p_ + start), i - start)) {
      return failAt("invalid UTF-8 in string", start);
    }
    pos_ = i + 1;
    if (!escaped) {
      lua_pushlstring(L_, p_ + start, i - start);
      return true;
    }
    buf_.clear();
    for (size_t j = start; j < i; ++j) {
      char c = p_[j];
      if (c != '\\') {
        buf_ += c;
        continue;
      }
      char e = p_[++j];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          buf_ += e;
          break;
        case 'b':
          buf_ += '\b';
          break;
        case 'f':
          buf_ += '\f';
          break;
        case 'n':
          buf_ += '\n';
          break;
        case 'r':
          buf_ += '\r';
          break;
        case 't':
          buf_ += '\t';
          break;
        case 'u': {
          unsigned cp;
          if (!hex4(j + 1, cp)) return false;
          size_t at = j - 1;
          j += 4;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return failAt("lone low surrogate", at + 1);
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo;
            if (j + 2 >= i || p_[j + 1] != '\\' || p_[j + 2] != 'u' || !hex4(j + 3, lo) ||
                lo < 0xDC00 || lo > 0xDFFF) {
              return failAt("lone high surrogate", at + 1);
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            j += 6;
          }
          utf8(buf_, cp);
          break;
        }
        default:
          return failAt("invalid escape", j - 1);
      }
    }
    lua_pushlstring(L_, buf_.data(), buf_.size());
    return true;
  }

  static bool digit(char c) { return c >= '0' && c <= '9'; }

  bool number() {
    size_t start = pos_;
    bool neg = p_[pos_] == '-';
    if (neg) ++pos_;
    if (pos_ >= n_ || !digit(p_[pos_])) return fail("invalid number");
    if (p_[pos_] == '0' && pos_ + 1 < n_ && digit(p_[pos_ + 1])) {
      return fail("leading zero in number");
    }
    size_t intStart = pos_;
    while (pos_ < n_ && digit(p_[pos_])) ++pos_;
    size_t intEnd = pos_;
    bool isFloat = false;
    if (pos_ < n_ && p_[pos_] == '.') {
      isFloat = true;
      ++pos_;
      if (pos_ >= n_ || !digit(p_[pos_])) return fail("digit expected after '.'");
      while (pos_ < n_ && digit(p_[pos_])) ++pos_;
    }
    if (pos_ < n_ && (p_[pos_] == 'e' || p_[pos_] == 'E')) {
      isFloat = true;
      ++pos_;
      if (pos_ < n_ && (p_[pos_] == '+' || p_[pos_] == '-')) ++pos_;
      if (pos_ >= n_ || !digit(p_[pos_])) return fail("digit expected in exponent");
      while (pos_ < n_ && digit(p_[pos_])) ++pos_;
    }
    if (!isFloat) {
      uint64_t mag;
      auto r = std::from_chars(p_ + intStart, p_ + intEnd, mag);
      if (r.ec == std::errc()) {
        if (!neg) {
          pushUint64(L_, mag);
          return true;
        }
        if (mag <= uint64_t{1} << 63) {
          pushInt64(L_, mag == 0 ? 0 : int64_t(0 - mag));
          return true;
        }
      }
      // Beyond 64 bits: the nearest double, as for any other number.
    }
    double d;
    auto r = std::from_chars(p_ + start, p_ + pos_, d);
    if (r.ec == std::errc::result_out_of_range) {
      // Overflow gives infinity; underflow (a negative exponent) gives zero.
      bool tiny = false;
      for (size_t i = start; i < pos_; ++i) {
        if ((p_[i] == 'e' || p_[i] == 'E') && i + 1 < pos_ && p_[i + 1] == '-') tiny = true;
      }
      d = tiny ? 0.0 : HUGE_VAL;
      if (neg) d = -d;
    } else if (r.ec != std::errc()) {
      return failAt("invalid number", start);
    }
    lua_pushnumber(L_, d);
    return true;
  }

  lua_State* L_;
  const char* p_;
  size_t n_;
  size_t pos_ = 0;
  int maxDepth_;
  const char* why_ = "";
  size_t errPos_ = 0;
  std::string buf_;
};

class Writer {
 public:
  Writer(lua_State* L, std::string& out, std::string& err, int indent, int maxDepth)
      : L_(L), out_(out), err_(err), indent_(indent), maxDepth_(maxDepth) {}

  bool value(int idx, int depth) {
    switch (lua_type(L_, idx)) {
      case LUA_TNIL:
        out_ += "null";
        return true;
      case LUA_TBOOLEAN:
        out_ += lua_toboolean(L_, idx) ? "true" : "false";
        return true;
      case LUA_TNUMBER:
        return number(lua_tonumber(L_, idx));
      case LUA_TSTRING: {
        size_t n;
        const char* s = lua_tolstring(L_, idx, &n);
        return string(s, n);
      }
      case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L_, idx) != nullValue()) return fail("cannot encode a userdata");
        out_ += "null";
        return true;
      case LUA_TTABLE:
        return table(idx, depth);
      default: {
        uint64_t bits;
        int kind = readInt64Cdata(L_, idx, bits);
        if (kind == 0) return fail(std::string("cannot encode a ") + luaL_typename(L_, idx));
        out_ += kind == 1 ? std::to_string(int64_t(bits)) : std::to_string(bits);
        return true;
      }
    }
  }

 private:
  bool number(double d) {
    if (!std::isfinite(d)) return fail("cannot encode NaN or infinity in JSON");
    char buf[32];
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == std::floor(d)) {
      auto r = std::to_chars(buf, buf + sizeof buf, int64_t(d));
      out_.append(buf, r.ptr);
    } else {
      auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest round-trip form
      out_.append(buf, r.ptr);
    }
    return true;
  }

  bool string(const char* s, size_t n) {
    if (!isValidUtf8(reinterpret_cast<const uint8_t*>(s), n)) {
      return fail("invalid UTF-8 in string");
    }
    out_ += '"';
    size_t run = 0;
    for (size_t i = 0; i < n; ++i) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_.append(s + run, i - run);
      run = i + 1;
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        case '\b':
          out_ += "\\b";
          break;
        case '\f':
          out_ += "\\f";
          break;
        default: {
          static const char* hexd = "0123456789abcdef";
          out_ += "\\u00";
          out_ += hexd[c >> 4];
          out_ += hexd[c & 15];
        }
      }
    }
    out_.append(s + run, n - run);
    out_ += '"';
    return true;
  }

  void newline(int depth) {
    if (indent_ < 0) return;
    out_ += '\n';
    out_.append(size_t(indent_) * size_t(depth), ' ');
  }

  bool table(int idx, int depth) {
    if (depth >= maxDepth_) return fail("nesting too deep");
    const void* self = lua_topointer(L_, idx);
    for (const void* p : path_) {
      if (p == self) return fail("cycle");
    }
    if (!lua_checkstack(L_, 6)) return fail("Lua stack overflow");
    path_.push_back(self);
    bool ok = true;
    int64_t n = arrayLength(L_, idx);
    if (n >= 0) {
      out_ += '[';
      for (int64_t i = 1; ok && i <= n; ++i) {
        if (i > 1) out_ += ',';
        newline(depth + 1);
        lua_rawgeti(L_, idx, int(i));
        ok = value(lua_gettop(L_), depth + 1);
        lua_pop(L_, 1);
      }
      if (n > 0) newline(depth);
      out_ += ']';
    } else {
      pushSortedKeys(L_, idx);
      int keys = lua_gettop(L_);
      size_t count = lua_objlen(L_, keys);
      out_ += '{';
      for (size_t i = 1; ok && i <= count; ++i) {
        if (i > 1) out_ += ',';
        newline(depth + 1);
        lua_rawgeti(L_, keys, int(i));
        int k = lua_gettop(L_);
        int t = lua_type(L_, k);
        if (t == LUA_TSTRING || t == LUA_TNUMBER) {
          lua_pushvalue(L_, k);  // tostring() text of a number key, on a copy
          size_t len;
          const char* s = lua_tolstring(L_, -1, &len);
          ok = string(s, len);
          lua_pop(L_, 1);
        } else {
          ok = fail(std::string("unsupported object key type ") + luaL_typename(L_, k));
        }
        if (ok) {
          out_ += indent_ < 0 ? ":" : ": ";
          lua_rawget(L_, idx);
          ok = value(lua_gettop(L_), depth + 1);
        }
        lua_settop(L_, keys);
      }
      if (count > 0) newline(depth);
      out_ += '}';
      lua_pop(L_, 1);
    }
    path_.pop_back();
    return ok;
  }

  bool fail(std::string why) {
    if (err_.empty()) err_ = std::move(why);
    return false;
  }

  lua_State* L_;
  std::string& out_;
  std::string& err_;
  int indent_;
  int maxDepth_;
  std::vector<const void*> path_;
};

}  // namespace

int pushJson(lua_State* L, const char* data, size_t size, std::string& err, int maxDepth) {
  int top = lua_gettop(L);
  Parser parser(L, data, size, maxDepth);
  if (parser.document()) return 1;
  lua_settop(L, top);
  err = parser.error();
  return 0;
}

bool encodeJson(lua_State* L, int idx, std::string& out, std::string& err, int indent,
                int maxDepth) {
  int top = lua_gettop(L);
  idx = idx < 0 ? top + idx + 1 : idx;
  size_t mark = out.size();
  Writer w(L, out, err, indent, maxDepth);
  bool ok = w.value(idx, 0);
  lua_settop(L, top);
  if (!ok) out.resize(mark);
  return ok;
}

}  // namespace lapps
