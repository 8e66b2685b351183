// UTF-8 validator against hand-written Autobahn 6.x style cases and against an independent
// reference (range arithmetic on code points instead of a state machine), exhaustively for
// short sequences.
#include <random>
#include <string>

#include "protocol/utf8-validator.h"
#include "test.h"

using namespace lapps;
using namespace lapps::test;

namespace {

constexpr size_t kValid = SIZE_MAX;          // whole input is complete, valid UTF-8
constexpr size_t kTruncated = SIZE_MAX - 1;  // valid so far, ends inside a sequence

// Could a sequence whose code point lies in [a, b] still be valid for an encoding that
// covers [lo, hi]? Surrogates are never valid.
bool viable(uint32_t a, uint32_t b, uint32_t lo, uint32_t hi) {
  const uint32_t x = a > lo ? a : lo, y = b < hi ? b : hi;
  return x <= y && !(x >= 0xD800 && y <= 0xDFFF);
}

// Index of the first byte after which the input is no longer a prefix of valid UTF-8.
size_t referenceFirstError(const uint8_t* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    const uint8_t b = p[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    int need;
    uint32_t cp, lo, hi;
    if ((b & 0xE0) == 0xC0) {
      need = 1, cp = b & 0x1F, lo = 0x80, hi = 0x7FF;
    } else if ((b & 0xF0) == 0xE0) {
      need = 2, cp = b & 0x0F, lo = 0x800, hi = 0xFFFF;
    } else if ((b & 0xF8) == 0xF0) {
      need = 3, cp = b & 0x07, lo = 0x10000, hi = 0x10FFFF;
    } else {
      return i;  // continuation byte or F8..FF as a lead
    }
    for (int have = 0;; ++have) {
      // Code points reachable by completing the `need - have` missing continuation bytes.
      const int bits = 6 * (need - have);
      if (!viable(cp << bits, (cp << bits) | ((1u << bits) - 1), lo, hi)) return i + have;
      if (have == need) break;
      if (i + have + 1 >= n) return kTruncated;
      const uint8_t c = p[i + have + 1];
      if ((c & 0xC0) != 0x80) return i + have + 1;
      cp = (cp << 6) | (c & 0x3F);
    }
    i += need + 1;
  }
  return kValid;
}

// What the validator says, fed one byte at a time: index of the byte whose feed() failed,
// else kValid or kTruncated from complete().
size_t validatorByteByByte(const uint8_t* p, size_t n) {
  Utf8Validator v;
  for (size_t i = 0; i < n; ++i)
    if (!v.feed(p + i, 1)) return i;
  return v.complete() ? kValid : kTruncated;
}

size_t validatorWhole(const uint8_t* p, size_t n) {
  Utf8Validator v;
  if (!v.feed(p, n)) return 0;  // position unknown, only validity
  return v.complete() ? kValid : kTruncated;
}

const uint8_t* u8(const std::string& s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

struct Case {
  const char* name;
  std::string bytes;
  size_t failAt;  // index of the first bad byte, kValid or kTruncated
};

// Autobahn 6.x / Markus Kuhn's decoder stress test, written from the spec.
const Case kCases[] = {
    {"empty", "", kValid},
    {"hello", "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", kValid},
    {"kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", kValid},
    {"U+0000", std::string("\x00", 1), kValid},
    {"U+007F", "\x7f", kValid},
    {"U+0080", "\xc2\x80", kValid},
    {"U+07FF", "\xdf\xbf", kValid},
    {"U+0800", "\xe0\xa0\x80", kValid},
    {"U+D7FF", "\xed\x9f\xbf", kValid},
    {"U+E000", "\xee\x80\x80", kValid},
    {"U+FFFD", "\xef\xbf\xbd", kValid},
    {"U+FFFE noncharacter", "\xef\xbf\xbe", kValid},
    {"U+FFFF noncharacter", "\xef\xbf\xbf", kValid},
    {"U+10000", "\xf0\x90\x80\x80", kValid},
    {"U+10FFFF", "\xf4\x8f\xbf\xbf", kValid},
    {"U+110000", "\xf4\x90\x80\x80", 1},
    {"U+13FFFF", "\xf4\xbf\xbf\xbf", 1},
    {"lead F5", "\xf5\x80\x80\x80", 0},
    {"5-byte U+200000", "\xf8\x88\x80\x80\x80", 0},
    {"6-byte U+4000000", "\xfc\x84\x80\x80\x80\x80", 0},
    {"FE", "\xfe", 0},
    {"FF", "\xff", 0},
    {"FE FE FF FF", "\xfe\xfe\xff\xff", 0},
    {"lone continuation 80", "\x80", 0},
    {"lone continuation BF", "a\xbf", 1},
    {"continuations 80 BF 80", "\x80\xbf\x80", 0},
    {"lonely C0 then space", "\xc0\x20", 0},
    {"lonely C2 then space", "\xc2\x20", 1},
    {"lonely E0 then space", "\xe0\x20", 1},
    {"lonely E1 then space", "\xe1\x20", 1},
    {"lonely F0 then space", "\xf0\x20", 1},
    {"lonely F1 then space", "\xf1\x20", 1},
    {"truncated 2-byte", "\xc2", kTruncated},
    {"truncated 3-byte (2 of 3)", "\xe2\x82", kTruncated},
    {"truncated 4-byte (3 of 4)", "\xf0\x9f\x98", kTruncated},
    {"truncated then ASCII", "\xe2\x82!", 2},
    {"truncated then lead", "\xf0\x9f\xf0\x9f\x98\x80", 2},
    {"overlong slash C0 AF", "\xc0\xaf", 0},
    {"overlong slash E0 80 AF", "\xe0\x80\xaf", 1},
    {"overlong slash F0 80 80 AF", "\xf0\x80\x80\xaf", 1},
    {"overlong max C1 BF", "\xc1\xbf", 0},
    {"overlong max E0 9F BF", "\xe0\x9f\xbf", 1},
    {"overlong max F0 8F BF BF", "\xf0\x8f\xbf\xbf", 1},
    {"overlong NUL C0 80", "\xc0\x80", 0},
    {"overlong NUL E0 80 80", "\xe0\x80\x80", 1},
    {"surrogate U+D800", "\xed\xa0\x80", 1},
    {"surrogate U+DB7F", "\xed\xad\xbf", 1},
    {"surrogate U+DB80", "\xed\xae\x80", 1},
    {"surrogate U+DBFF", "\xed\xaf\xbf", 1},
    {"surrogate U+DC00", "\xed\xb0\x80", 1},
    {"surrogate U+DF80", "\xed\xbe\x80", 1},
    {"surrogate U+DFFF", "\xed\xbf\xbf", 1},
    {"surrogate pair", "\xed\xa0\x80\xed\xb0\x80", 1},
    {"valid then surrogate", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", 12},
    {"valid then F4 90 (6.4.1 style)",
     "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80", 12},
};

}  // namespace

TEST("utf8: Autobahn 6.x style cases (validity and fail-fast position)") {
  for (const Case& c : kCases) {
    const size_t got = validatorByteByByte(u8(c.bytes), c.bytes.size());
    if (!CHECK_EQ(got, c.failAt)) FAIL(c.name);
    if (!CHECK_EQ(referenceFirstError(u8(c.bytes), c.bytes.size()), c.failAt))
      FAIL(std::string("reference disagrees: ") + c.name);
    CHECK_EQ(isValidUtf8(u8(c.bytes), c.bytes.size()), c.failAt == kValid);
  }
}

TEST("utf8: exhaustive 1-3 byte sequences and sampled 4-byte ones match the reference") {
  uint8_t b[4];
  size_t mismatches = 0;
  auto compare = [&](size_t n) {
    const size_t want = referenceFirstError(b, n);
    if (validatorByteByByte(b, n) != want || (validatorWhole(b, n) == kValid) != (want == kValid) ||
        (validatorWhole(b, n) == kTruncated) != (want == kTruncated)) {
      if (++mismatches < 5) {
        std::string hex;
        for (size_t i = 0; i < n; ++i) hex += std::to_string(b[i]) + " ";
        FAIL("mismatch on bytes " + hex);
      }
    }
  };
  for (unsigned x = 0; x < 256; ++x) {
    b[0] = static_cast<uint8_t>(x);
    compare(1);
    for (unsigned y = 0; y < 256; ++y) {
      b[1] = static_cast<uint8_t>(y);
      compare(2);
      if (x < 0xC0) continue;  // ASCII/continuation leads: covered by the 2-byte cases
      for (unsigned z = 0; z < 256; ++z) {
        b[2] = static_cast<uint8_t>(z);
        compare(3);
      }
    }
  }
  const uint8_t interesting[] = {0x00, 0x41, 0x7F, 0x80, 0x81, 0x8F, 0x90, 0x9F, 0xA0, 0xBE,
                                 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xF0, 0xF4, 0xFF};
  for (unsigned x = 0xF0; x < 0x100; ++x)
    for (unsigned y = 0; y < 256; ++y)
      for (uint8_t z : interesting)
        for (uint8_t w : interesting) {
          b[0] = static_cast<uint8_t>(x), b[1] = static_cast<uint8_t>(y), b[2] = z, b[3] = w;
          compare(4);
        }
  CHECK_EQ(mismatches, size_t{0});
}

TEST("utf8: state is kept across feed() calls, split at every byte") {
  const std::string text =
      "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xed\x9f\xbf\xf4\x8f\xbf\xbf "
      "long ascii run that crosses sixteen and sixty-four byte blocks........ \xce\xba!";
  for (size_t k = 0; k <= text.size(); ++k) {
    Utf8Validator v;
    CHECK(v.feed(u8(text), k));
    CHECK(v.feed(u8(text) + k, text.size() - k));
    CHECK(v.complete());
  }
  Utf8Validator v;
  CHECK(v.feed(u8(text), 2));  // "a" + first byte of é
  CHECK(!v.complete());
  v.reset();
  CHECK(v.complete());
  CHECK(!v.feed(reinterpret_cast<const uint8_t*>("\xff"), 1));
  CHECK(v.failed());
  CHECK(!v.feed(reinterpret_cast<const uint8_t*>("a"), 1));  // stays failed
  v.reset();
  CHECK(v.feed(reinterpret_cast<const uint8_t*>("a"), 1));
}

TEST("utf8: fast ASCII path finds a bad byte at every position and chunk") {
  for (size_t len : {1, 7, 8, 15, 16, 17, 63, 64, 65, 200}) {
    for (size_t bad = 0; bad < len; ++bad) {
      for (uint8_t badByte : {0x80, 0xFF, 0xC0}) {
        std::string s(len, 'x');
        s[bad] = static_cast<char>(badByte);
        CHECK(!isValidUtf8(u8(s), s.size()));
        // Fed in chunks of 7: the chunk containing the bad byte is the one that fails.
        Utf8Validator v;
        size_t failedChunk = SIZE_MAX;
        for (size_t off = 0; off < len; off += 7) {
          const size_t n = len - off < 7 ? len - off : 7;
          if (!v.feed(u8(s) + off, n)) {
            failedChunk = off / 7;
            break;
          }
        }
        if (!CHECK_EQ(failedChunk, bad / 7)) return;
      }
    }
    // Multi-byte characters at every alignment inside long ASCII.
    for (size_t at = 0; at + 4 <= len; ++at) {
      std::string s(len, 'y');
      s.replace(at, 4, "\xf0\x9f\x98\x80");
      CHECK(isValidUtf8(u8(s), s.size()));
    }
  }
}

TEST("utf8: random strings agree with the reference") {
  std::mt19937 rng(99);
  const char* pieces[] = {"a",
                          "\xc3\xa9",
                          "\xe2\x82\xac",
                          "\xf0\x9f\x98\x80",
                          "\x80",
                          "\xed\xa0",
                          "\xf4\x90",
                          "\xc0",
                          "\xe0\x80",
                          "\xff",
                          "0123456789abcdef0123456789"};
  for (int round = 0; round < 20000; ++round) {
    std::string s;
    const int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      const uint32_t r = rng() % 100;
      s += pieces[r < 80 ? r % 4 + (r % 5 == 0 ? 6 : 0) : r % 11];
    }
    const size_t want = referenceFirstError(u8(s), s.size());
    if (!CHECK_EQ(validatorByteByByte(u8(s), s.size()), want)) return;
    CHECK_EQ(isValidUtf8(u8(s), s.size()), want == kValid);
  }
}
