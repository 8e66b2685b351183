// Micro-benchmark of the real frame parser (lapps::parseFrames): header parsing, in-place
// unmasking and, for text, UTF-8 validation, over a read-buffer-sized run of whole masked
// client frames. Before every pass the masked bytes are restored from a pristine copy
// outside the timed region (the copy also leaves the buffer in cache, as a recv() would),
// so every timed pass really unmasks.
//
// Usage: lapps-bench-parser [--json] [--quick]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench-util.h"
#include "protocol/frame-parser.h"

namespace {

using lapps::bench::Clock;

constexpr size_t kBufferTarget = 256 * 1024;  // about one server read buffer
constexpr uint64_t kMaxMessage = 64 * 1024 * 1024;

enum class Content { Binary, Ascii, Utf8 };

// Counts what the parser delivers and folds every message into a checksum that is printed
// at the end, so no part of the parse can be optimised away.
struct Sink {
  uint64_t frames = 0;
  uint64_t checksum = 0;
  bool error = false;

  bool onData(uint8_t* data, size_t len, bool, bool, bool) {
    ++frames;
    checksum = checksum * 31 + len + (len ? data[0] + data[len - 1] : 0);
    return true;
  }
  bool onPing(uint8_t*, size_t) { return true; }
  bool onPong(uint8_t*, size_t) { return true; }
  bool onClose(uint16_t, const uint8_t*, size_t) { return true; }
  void onError(lapps::ParseError) { error = true; }
};

// Exactly n bytes of payload: random bytes, printable ASCII, or a mix of 1- to 4-byte UTF-8
// sequences (padded with ASCII where the next sequence would not fit).
std::vector<uint8_t> makePayload(size_t n, Content c, std::mt19937& rng) {
  std::vector<uint8_t> p;
  p.reserve(n);
  if (c == Content::Binary) {
    while (p.size() < n) p.push_back(static_cast<uint8_t>(rng()));
  } else if (c == Content::Ascii) {
    while (p.size() < n) p.push_back(static_cast<uint8_t>(' ' + rng() % 95));
  } else {
    static const char* const kChars[] = {
        "a",        "\xC3\xA9",    "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
        "\xD0\x96", "\xE4\xB8\xAD"};  // a é € 😀 Ж 中
    while (p.size() < n) {
      const char* s = kChars[rng() % 6];
      const size_t len = std::strlen(s);
      if (p.size() + len > n) s = "z";
      for (const char* q = s; *q; ++q) p.push_back(static_cast<uint8_t>(*q));
    }
  }
  return p;
}

// Appends one final, masked client frame.
void appendFrame(std::vector<uint8_t>& out, const std::vector<uint8_t>& payload, bool text,
                 std::mt19937& rng) {
  const size_t n = payload.size();
  out.push_back(text ? 0x81 : 0x82);
  if (n < 126) {
    out.push_back(static_cast<uint8_t>(0x80 | n));
  } else if (n <= 0xFFFF) {
    out.push_back(0x80 | 126);
    out.push_back(static_cast<uint8_t>(n >> 8));
    out.push_back(static_cast<uint8_t>(n));
  } else {
    out.push_back(0x80 | 127);
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<uint8_t>(uint64_t{n} >> (8 * i)));
  }
  uint8_t mask[4];
  for (uint8_t& m : mask) m = static_cast<uint8_t>(rng());
  out.insert(out.end(), mask, mask + 4);
  const size_t at = out.size();
  out.insert(out.end(), payload.begin(), payload.end());
  lapps::unmask(out.data() + at, n, mask, 0);  // masking is its own inverse
}

struct Case {
  const char* name;
  size_t payload;
  Content content;
};

lapps::bench::Result runCase(const lapps::bench::Options& o, const Case& c, uint64_t& checksum) {
  std::mt19937 rng(static_cast<uint32_t>(c.payload * 3 + static_cast<size_t>(c.content)));
  const bool text = c.content != Content::Binary;
  std::vector<uint8_t> pristine;
  size_t frames = 0;
  do {
    appendFrame(pristine, makePayload(c.payload, c.content, rng), text, rng);
    ++frames;
  } while (pristine.size() < kBufferTarget);
  std::vector<uint8_t> work(pristine.size());

  const lapps::ParserLimits limits{kMaxMessage};
  Sink sink;
  auto pass = [&] {
    std::memcpy(work.data(), pristine.data(), work.size());
    lapps::FrameParserState st;
    const uint64_t before = sink.frames;
    lapps::bench::clobberMemory();
    const auto t0 = Clock::now();
    const size_t used = lapps::parseFrames(st, limits, work.data(), work.size(), sink);
    const auto t1 = Clock::now();
    if (used != work.size() || sink.error || sink.frames - before != frames) {
      std::fprintf(stderr, "lapps-bench-parser: %s: parse failed\n", c.name);
      std::exit(1);
    }
    return lapps::bench::elapsedNs(t0, t1);
  };
  lapps::bench::Result r = lapps::bench::measure(o, c.name, c.payload, text, frames, pass);
  checksum = checksum * 1000003 + sink.checksum;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const lapps::bench::Options o = lapps::bench::parseOptions(argc, argv, "lapps-bench-parser");
  static const Case kCases[] = {
      {"binary-32", 32, Content::Binary},     {"text-32", 32, Content::Ascii},
      {"binary-125", 125, Content::Binary},   {"text-125", 125, Content::Ascii},
      {"binary-1k", 1024, Content::Binary},   {"text-1k", 1024, Content::Ascii},
      {"binary-16k", 16384, Content::Binary}, {"text-16k", 16384, Content::Ascii},
      {"binary-64k", 65536, Content::Binary}, {"text-64k", 65536, Content::Ascii},
      {"utf8-64k", 65536, Content::Utf8},
  };
  std::vector<lapps::bench::Result> results;
  uint64_t checksum = 0;
  for (const Case& c : kCases) results.push_back(runCase(o, c, checksum));
  lapps::bench::print(o, "frame-parser", results, checksum);
  return 0;
}
