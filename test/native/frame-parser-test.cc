// Frame parser: every stream must give the same events however it is split into reads, in
// the server role (masked client frames) and in the client role (unmasked server frames).
#include <memory>
#include <random>

#include "frames.h"
#include "protocol/frame-parser.h"
#include "test.h"

using namespace lapps;
using namespace lapps::test;

namespace {

constexpr uint8_t kCont = 0, kText = 1, kBin = 2, kClose = 8, kPing = 9, kPong = 10;

std::string binaryPayload(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// Valid UTF-8 of n bytes mixing 1- to 4-byte characters, so splits land inside them.
std::string textPayload(size_t n, uint32_t seed) {
  static const char* chars[] = {"a",
                                "Z",
                                " ",
                                "\xc3\xa9",
                                "\xce\xba",
                                "\xe2\x82\xac",
                                "\xed\x9f\xbf",
                                "\xf0\x9f\x98\x80",
                                "\xf4\x8f\xbf\xbf"};
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n) {
    std::string_view c = chars[rng() % 9];
    if (s.size() + c.size() > n) c = "x";
    s.append(c);
  }
  return s;
}

// Splitting at every byte, one byte at a time and at random places gives the same result.
template <FrameRole R = FrameRole::Server>
void checkSplits(const Bytes& stream, uint64_t max = uint64_t{1} << 32) {
  const RunResult whole = runSplit<R>(stream, {}, max);
  CHECK(whole.ok);
  for (size_t k = 1; k < stream.size(); ++k) {
    const RunResult r = runSplit<R>(stream, {k}, max);
    if (!CHECK(r.ok) || !CHECK_EQ(r.events, whole.events)) return;
  }
  const RunResult bytes = runSplit<R>(stream, everyByte(stream.size()), max);
  CHECK(bytes.ok);
  CHECK_EQ(bytes.events, whole.events);
  std::mt19937 rng(static_cast<uint32_t>(stream.size()));
  for (int round = 0; round < 50 && stream.size() > 2; ++round) {
    size_t a = 1 + rng() % (stream.size() - 1), b = 1 + rng() % (stream.size() - 1);
    if (a > b) std::swap(a, b);
    std::vector<size_t> cuts{a};
    if (b != a) cuts.push_back(b);
    const RunResult r = runSplit<R>(stream, cuts, max);
    if (!CHECK(r.ok) || !CHECK_EQ(r.events, whole.events)) return;
  }
}

// 1 to 5 frames of any opcode in any order (continuations and control frames too, fin or
// not), text payloads under maxPayload bytes: mostly invalid streams, for mutation tests.
Bytes anyFrames(std::mt19937& rng, uint32_t maxPayload) {
  Bytes s;
  const int frames = 1 + static_cast<int>(rng() % 5);
  for (int f = 0; f < frames; ++f) {
    static const uint8_t ops[] = {kCont, kText, kBin, kClose, kPing, kPong};
    FrameOpts o;
    o.fin = rng() % 3 != 0;
    o.mask = rng();
    const uint8_t op = ops[rng() % 6];
    const std::string payload = op == kClose ? closePayload(static_cast<uint16_t>(rng() % 5000),
                                                            textPayload(rng() % 8, rng()))
                                             : textPayload(rng() % maxPayload, rng());
    appendFrame(s, op, payload, o);
  }
  return s;
}

std::vector<Event> parseWhole(const Bytes& stream, uint64_t max = uint64_t{1} << 32) {
  return runSplit(stream, {}, max).events;
}

}  // namespace

TEST("frame parser: single text and binary frames") {
  const Bytes s = concat({frame(kText, "Hello"), frame(kBin, binaryPayload(200, 1))});
  CHECK_EQ(parseWhole(s),
           (std::vector<Event>{{"text", 0, "Hello"}, {"binary", 0, binaryPayload(200, 1)}}));
  checkSplits(s);
}

TEST("frame parser: a whole frame is one zero-copy onData call") {
  Bytes s = frame(kText, "Hello, world");
  FrameParserState st;
  Recorder rec;
  CHECK_EQ(parseFrames(st, ParserLimits{1024}, s.data(), s.size(), rec), s.size());
  CHECK_EQ(rec.dataCalls, 1);
  CHECK(rec.lastData == s.data() + 6);  // points at the payload, unmasked in place
  CHECK_EQ(std::string_view(reinterpret_cast<const char*>(s.data() + 6), 12), "Hello, world");
}

TEST("frame parser: empty messages and empty final fragments") {
  const Bytes s = concat({frame(kText, ""), frame(kBin, ""), frame(kText, "ab", {.fin = false}),
                          frame(kCont, "", {.fin = false}), frame(kCont, ""),
                          frame(kBin, "", {.fin = false}), frame(kCont, "")});
  CHECK_EQ(parseWhole(s),
           (std::vector<Event>{
               {"text", 0, ""}, {"binary", 0, ""}, {"text", 0, "ab"}, {"binary", 0, ""}}));
  checkSplits(s);
  Bytes one = frame(kText, "");
  FrameParserState st;
  Recorder rec;
  parseFrames(st, ParserLimits{10}, one.data(), one.size(), rec);
  CHECK_EQ(rec.dataCalls, 1);
}

TEST("frame parser: payload sizes 0..65536 and 3 MiB, text and binary, split") {
  const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 3 * 1024 * 1024 + 5};
  for (size_t n : sizes) {
    for (uint8_t op : {kText, kBin}) {
      const std::string payload =
          op == kText ? textPayload(n, static_cast<uint32_t>(n)) : binaryPayload(n, 7);
      const Bytes s = frame(op, payload);
      const size_t h = s.size() - n;
      const std::vector<Event> expect{{op == kText ? "text" : "binary", 0, payload}};
      Bytes buf = s;  // parsed (and unmasked) in place
      FrameParserState st;
      Recorder rec;
      CHECK_EQ(parseFrames(st, ParserLimits{n}, buf.data(), buf.size(), rec), s.size());
      CHECK_EQ(rec.dataCalls, 1);
      CHECK(rec.lastData == buf.data() + h);
      CHECK_EQ(rec.events, expect);
      for (size_t cut : {size_t{1}, size_t{2}, h - 1, h, h + 1, s.size() / 2, s.size() - 1}) {
        if (cut == 0 || cut >= s.size()) continue;
        CHECK_EQ(runSplit(s, {cut}).events, expect);
      }
      CHECK_EQ(runSplit(s, chunked(s.size(), 4093)).events, expect);
      if (n <= 65536) {
        const RunResult r = runSplit(s, everyByte(s.size()));
        CHECK(r.ok);
        CHECK_EQ(r.events, expect);
      }
    }
  }
}

TEST("frame parser: fragmented messages with interleaved control frames, every split") {
  const std::string k = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";  // κόσμε
  const Bytes s = concat({
      frame(kText, k.substr(0, 3), {.fin = false}),  // fragments split code points
      frame(kPing, "p1"),
      frame(kCont, k.substr(3, 5), {.fin = false, .mask = 0x01020304}),
      frame(kPong, ""),
      frame(kPing, std::string(125, 'x')),
      frame(kCont, k.substr(8)),
      frame(kBin, std::string("\x00\xff", 2), {.fin = false}),
      frame(kPing, ""),
      frame(kCont, "\x80"),
      frame(kClose, closePayload(1000, "bye")),
  });
  CHECK_EQ(parseWhole(s), (std::vector<Event>{{"ping", 0, "p1"},
                                              {"pong", 0, ""},
                                              {"ping", 0, std::string(125, 'x')},
                                              {"text", 0, k},
                                              {"ping", 0, ""},
                                              {"binary", 0, std::string("\x00\xff\x80", 3)},
                                              {"close", 1000, "bye"}}));
  checkSplits(s);
}

TEST("frame parser: non-minimal length encodings are accepted") {
  const Bytes s = concat({frame(kText, "abc", {.lenBytes = 2}), frame(kBin, "de", {.lenBytes = 8}),
                          frame(kPing, "f", {.lenBytes = 0})});
  CHECK_EQ(parseWhole(s),
           (std::vector<Event>{{"text", 0, "abc"}, {"binary", 0, "de"}, {"ping", 0, "f"}}));
  checkSplits(s);
}

TEST("frame parser: close frames") {
  CHECK_EQ(parseWhole(frame(kClose, "")), (std::vector<Event>{{"close", 1005, ""}}));
  CHECK_EQ(parseWhole(frame(kClose, closePayload(1000))),
           (std::vector<Event>{{"close", 1000, ""}}));
  const std::string reason(123, 'r');
  const Bytes s = frame(kClose, closePayload(4999, reason));
  CHECK_EQ(parseWhole(s), (std::vector<Event>{{"close", 4999, reason}}));
  checkSplits(s);
  for (uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                        3000, 3999, 4000, 4999})
    CHECK_EQ(parseWhole(frame(kClose, closePayload(code, "\xc3\xa9"))),
             (std::vector<Event>{{"close", code, "\xc3\xa9"}}));
  for (uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535})
    CHECK_EQ(parseWhole(frame(kClose, closePayload(code))),
             (std::vector<Event>{errorEvent(ParseError::InvalidCloseCode)}));
}

namespace {

struct ErrorCase {
  const char* name;
  Bytes stream;
  std::vector<Event> expect;  // events, ending with the error
  uint64_t max = 1 << 20;
};

std::vector<ErrorCase> errorCases() {
  using E = ParseError;
  const Bytes ok = frame(kText, "ok");
  const Event okEvent{"text", 0, "ok"};
  auto withOk = [&](E e) { return std::vector<Event>{okEvent, errorEvent(e)}; };
  std::vector<ErrorCase> c;
  c.push_back({"rsv1", concat({ok, frame(kText, "x", {.rsv = 0x40})}), withOk(E::ReservedBits)});
  c.push_back({"rsv2", concat({ok, frame(kBin, "x", {.rsv = 0x20})}), withOk(E::ReservedBits)});
  c.push_back({"rsv3", concat({ok, frame(kPing, "", {.rsv = 0x10})}), withOk(E::ReservedBits)});
  for (uint8_t op : {3, 4, 5, 6, 7, 11, 12, 13, 14, 15})
    c.push_back({"reserved opcode", concat({ok, frame(op, "")}), withOk(E::ReservedOpcode)});
  c.push_back(
      {"unmasked", concat({ok, frame(kText, "x", {.masked = false})}), withOk(E::UnmaskedFrame)});
  c.push_back({"unmasked empty close", concat({ok, frame(kClose, "", {.masked = false})}),
               withOk(E::UnmaskedFrame)});
  c.push_back(
      {"ping 126", concat({ok, frame(kPing, std::string(126, 'p'))}), withOk(E::ControlTooLong)});
  c.push_back({"close 16-bit length", concat({ok, frame(kClose, "ab", {.lenBytes = 2})}),
               withOk(E::ControlTooLong)});
  c.push_back({"pong 64-bit length", concat({ok, frame(kPong, "", {.lenBytes = 8})}),
               withOk(E::ControlTooLong)});
  c.push_back({"fragmented ping", concat({ok, frame(kPing, "a", {.fin = false})}),
               withOk(E::ControlFragmented)});
  c.push_back({"fragmented close", concat({ok, frame(kClose, "", {.fin = false})}),
               withOk(E::ControlFragmented)});
  c.push_back(
      {"continuation first", concat({ok, frame(kCont, "x")}), withOk(E::UnexpectedContinuation)});
  c.push_back(
      {"continuation after complete message",
       concat({ok, frame(kText, "a", {.fin = false}), frame(kCont, "b"), frame(kCont, "c")}),
       {okEvent, {"text", 0, "ab"}, errorEvent(E::UnexpectedContinuation)}});
  c.push_back({"text inside fragmented",
               concat({ok, frame(kText, "a", {.fin = false}), frame(kText, "b")}),
               withOk(E::ExpectedContinuation)});
  c.push_back({"binary inside fragmented",
               concat({ok, frame(kBin, "a", {.fin = false}), frame(kPing, ""), frame(kBin, "b")}),
               {okEvent, {"ping", 0, ""}, errorEvent(E::ExpectedContinuation)}});
  c.push_back(
      {"too big", concat({ok, frame(kBin, std::string(11, 'b'))}), withOk(E::MessageTooBig), 10});
  c.push_back(
      {"too big over fragments",
       concat({ok, frame(kBin, std::string(6, 'b'), {.fin = false}), frame(kCont, "12345")}),
       withOk(E::MessageTooBig), 10});
  c.push_back({"bad utf8", concat({ok, frame(kText, "ab\xff")}), withOk(E::InvalidUtf8)});
  c.push_back({"bad utf8 across fragments",
               concat({ok, frame(kText, "\xce", {.fin = false}), frame(kCont, "A")}),
               withOk(E::InvalidUtf8)});
  c.push_back({"truncated utf8 at message end",
               concat({ok, frame(kText, "a\xe2\x82", {.fin = false}), frame(kCont, "")}),
               withOk(E::InvalidUtf8)});
  c.push_back({"truncated utf8 single frame", concat({ok, frame(kText, "a\xf0\x9f\x98")}),
               withOk(E::InvalidUtf8)});
  c.push_back({"close length 1", concat({ok, frame(kClose, "\x03")}), withOk(E::BadCloseLength)});
  c.push_back({"close code 1005", concat({ok, frame(kClose, closePayload(1005))}),
               withOk(E::InvalidCloseCode)});
  c.push_back({"close reason utf8",
               concat({ok, frame(kClose, closePayload(1000, "a\xed\xa0\x80"))}),
               withOk(E::InvalidCloseReason)});
  Bytes msb = ok;
  for (uint8_t b : {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}) msb.push_back(b);
  c.push_back({"64-bit length 2^63", msb, withOk(E::BadLength), UINT64_MAX});
  return c;
}

}  // namespace

TEST("frame parser: every ParseError, same result for every split") {
  for (const ErrorCase& c : errorCases()) {
    const std::vector<Event> got = parseWhole(c.stream, c.max);
    if (!CHECK_EQ(got, c.expect)) {
      FAIL(std::string("case: ") + c.name);
      continue;
    }
    checkSplits(c.stream, c.max);
  }
}

TEST("frame parser: frame size and fragment count limits, same result for every split") {
  const ParserLimits lim{1000, 10, 3};
  const auto every = [&](const Bytes& s, const std::vector<Event>& expect) {
    const RunResult whole = runSplit(s, {}, lim);
    CHECK_EQ(whole.events, expect);
    for (size_t k = 1; k < s.size(); ++k) {
      if (!CHECK_EQ(runSplit(s, {k}, lim).events, expect)) return;
    }
    CHECK_EQ(runSplit(s, everyByte(s.size()), lim).events, expect);
  };
  // At the limits: a 10-byte frame, a message of exactly 3 frames.
  every(concat({frame(kText, "0123456789"), frame(kBin, "a", {.fin = false}),
                frame(kCont, "b", {.fin = false}), frame(kCont, "c")}),
        {{"text", 0, "0123456789"}, {"binary", 0, "abc"}});
  // One byte over the frame limit: 1009, even though the message limit is far away.
  every(concat({frame(kText, "ok"), frame(kBin, "0123456789a")}),
        {{"text", 0, "ok"}, errorEvent(ParseError::FrameTooBig)});
  // A continuation frame over the frame limit.
  every(concat({frame(kBin, "a", {.fin = false}), frame(kCont, "0123456789a")}),
        {errorEvent(ParseError::FrameTooBig)});
  // A fourth frame in one message (empty ones count too): 1008.
  every(concat({frame(kText, "", {.fin = false}), frame(kCont, "", {.fin = false}),
                frame(kCont, "", {.fin = false}), frame(kCont, "")}),
        {errorEvent(ParseError::TooManyFragments)});
  // Control frames between fragments do not count; the count restarts with each message.
  every(concat({frame(kText, "a", {.fin = false}), frame(kPing, ""),
                frame(kCont, "b", {.fin = false}), frame(kPing, ""), frame(kCont, "c"),
                frame(kBin, "d", {.fin = false}), frame(kCont, "e", {.fin = false}),
                frame(kCont, "f")}),
        {{"ping", 0, ""}, {"ping", 0, ""}, {"text", 0, "abc"}, {"binary", 0, "def"}});
  CHECK_EQ(closeCodeFor(ParseError::FrameTooBig), 1009);
  CHECK_EQ(closeCodeFor(ParseError::TooManyFragments), 1008);
}

TEST("frame parser: after an error nothing more is consumed") {
  Bytes s = concat({frame(kText, "x", {.rsv = 0x40}), frame(kText, "ok")});
  FrameParserState st;
  Recorder rec;
  parseFrames(st, ParserLimits{100}, s.data(), s.size(), rec);
  CHECK(st.failed());
  CHECK_EQ(st.error, ParseError::ReservedBits);
  Bytes more = frame(kText, "ok");
  CHECK_EQ(parseFrames(st, ParserLimits{100}, more.data(), more.size(), rec), size_t{0});
  CHECK_EQ(rec.errors, 1);
  CHECK_EQ(rec.dataCalls, 0);
}

TEST("frame parser: 2^63 and huge declared lengths fail from the header alone") {
  // Only the 14 header bytes are given: nothing is delivered, the error comes at once.
  uint8_t h1[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
  FrameParserState st;
  Recorder rec;
  parseFrames(st, ParserLimits{UINT64_MAX}, h1, sizeof h1, rec);
  CHECK_EQ(rec.events, (std::vector<Event>{errorEvent(ParseError::BadLength)}));
  CHECK_EQ(closeCodeFor(st.error), 1002);
  uint8_t h2[] = {0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4};
  FrameParserState st2;
  Recorder rec2;
  parseFrames(st2, ParserLimits{16 << 20}, h2, sizeof h2, rec2);
  CHECK_EQ(rec2.events, (std::vector<Event>{errorEvent(ParseError::MessageTooBig)}));
  CHECK_EQ(closeCodeFor(st2.error), 1009);
  // Unlimited: 2^63-1 is a legal length; payload then streams in chunks.
  FrameParserState st3;
  Recorder rec3;
  CHECK_EQ(parseFrames(st3, ParserLimits{UINT64_MAX}, h2, sizeof h2, rec3), sizeof h2);
  uint8_t chunk[100] = {};
  CHECK_EQ(parseFrames(st3, ParserLimits{UINT64_MAX}, chunk, sizeof chunk, rec3), sizeof chunk);
  CHECK_EQ(rec3.dataCalls, 1);
  CHECK_EQ(rec3.partial.size(), size_t{100});
  CHECK(rec3.inMessage);
  CHECK_EQ(st3.remaining, (uint64_t{1} << 63) - 1 - 100);
}

TEST("frame parser: max message size exactly at and one over the limit") {
  const std::string ten(10, 't');
  CHECK_EQ(parseWhole(frame(kText, ten), 10), (std::vector<Event>{{"text", 0, ten}}));
  CHECK_EQ(parseWhole(frame(kText, ten + "!"), 10),
           (std::vector<Event>{errorEvent(ParseError::MessageTooBig)}));
  const Bytes frag = concat({frame(kBin, "12345", {.fin = false}), frame(kPing, "p"),
                             frame(kCont, "6789", {.fin = false}), frame(kCont, "0")});
  CHECK_EQ(parseWhole(frag, 10),
           (std::vector<Event>{{"ping", 0, "p"}, {"binary", 0, "1234567890"}}));
  checkSplits(frag, 10);
  CHECK_EQ(parseWhole(frag, 9),
           (std::vector<Event>{{"ping", 0, "p"}, errorEvent(ParseError::MessageTooBig)}));
  checkSplits(frag, 9);
  // The limit is per message: the next message starts from zero again.
  const Bytes two = concat({frame(kBin, ten), frame(kBin, ten)});
  CHECK_EQ(parseWhole(two, 10), (std::vector<Event>{{"binary", 0, ten}, {"binary", 0, ten}}));
  // Control frames do not count.
  CHECK_EQ(parseWhole(frame(kPing, "ping"), 0), (std::vector<Event>{{"ping", 0, "ping"}}));
  // Over the limit: no payload byte of the offending frame is delivered.
  Bytes big = concat({frame(kBin, "12345", {.fin = false}), frame(kCont, "678901")});
  FrameParserState st;
  Recorder rec;
  parseFrames(st, ParserLimits{10}, big.data(), big.size(), rec);
  CHECK_EQ(rec.partial, "12345");
  CHECK_EQ(st.error, ParseError::MessageTooBig);
}

TEST("frame parser: invalid UTF-8 fails at the first bad byte, even mid-frame") {
  // One frame fed a byte at a time: the error comes with the byte that makes it invalid.
  const std::string payload = "ab\xce\xba\xf4\x90\x80\x80zz";  // F4 90 > U+10FFFF
  const Bytes s = frame(kText, payload);
  const RunResult r = runSplit(s, everyByte(s.size()));
  CHECK_EQ(r.errorPiece, size_t{6 + 5});
  // Truncated sequence followed by a non-continuation: fails in that fragment, before the
  // rest of the message (Autobahn 6.4.x).
  const Bytes f1 = frame(kText, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", {.fin = false});
  const Bytes f2 = frame(kCont, "\xf4\x90\x80\x80", {.fin = false});
  const Bytes f3 = frame(kCont, "edited");
  const Bytes all = concat({f1, f2, f3});
  const RunResult byFrame = runSplit(all, {f1.size(), f1.size() + f2.size()});
  CHECK_EQ(byFrame.errorPiece, size_t{1});
  CHECK_EQ(byFrame.events, (std::vector<Event>{errorEvent(ParseError::InvalidUtf8)}));
  const Bytes g = concat({frame(kText, "a\xe2\x82", {.fin = false}), frame(kCont, "(b")});
  const RunResult byByte = runSplit(g, everyByte(g.size()));
  CHECK_EQ(byByte.errorPiece, g.size() - 2);  // the '(' after E2 82
}

TEST("frame parser: a sink returning false stops parsing; calling again resumes") {
  const Bytes s =
      concat({frame(kText, "one"), frame(kPing, "p"), frame(kBin, "two", {.fin = false}),
              frame(kCont, "three"), frame(kClose, closePayload(1000))});
  const std::vector<Event> expect = parseWhole(s);
  for (int stopAt = 1; stopAt <= 6; ++stopAt) {
    Bytes buf = s;
    FrameParserState st;
    Recorder rec;
    rec.stopAfter = stopAt;
    size_t pos = 0;
    int calls = 0;
    while (pos < buf.size() && calls++ < 20) {
      const size_t used =
          parseFrames(st, ParserLimits{100}, buf.data() + pos, buf.size() - pos, rec);
      pos += used;
      rec.stopAfter = rec.callbacks + stopAt;
    }
    CHECK_EQ(pos, buf.size());
    CHECK_EQ(rec.events, expect);
  }
  // Stopping on the first onData returns exactly the bytes of the first frame.
  Bytes buf = s;
  FrameParserState st;
  Recorder rec;
  rec.stopAfter = 1;
  CHECK_EQ(parseFrames(st, ParserLimits{100}, buf.data(), buf.size(), rec),
           frame(kText, "one").size());
}

TEST("frame parser: random streams of random frames, random splits") {
  std::mt19937 rng(12345);
  for (int round = 0; round < 200; ++round) {
    Bytes s;
    bool open = false;
    const int frames = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < frames; ++f) {
      const uint32_t kind = rng() % 6;
      const size_t n = rng() % 4 == 0 ? rng() % 70000 : rng() % 130;
      FrameOpts o;
      o.mask = rng();
      if (kind == 0) {
        appendFrame(s, kPing, binaryPayload(n % 126, rng()), o);
      } else if (kind == 1) {
        appendFrame(s, kPong, binaryPayload(n % 126, rng()), o);
      } else {
        o.fin = rng() % 2 == 0;
        appendFrame(s, open ? kCont : (kind & 1 ? kText : kBin), textPayload(n, rng()), o);
        open = !o.fin;
      }
    }
    const RunResult whole = runSplit(s, {});
    CHECK(whole.ok);
    std::vector<size_t> cuts;
    for (size_t p = 1 + rng() % 300; p < s.size(); p += 1 + rng() % 300) cuts.push_back(p);
    const RunResult r = runSplit(s, cuts);
    if (!CHECK(r.ok) || !CHECK_EQ(r.events, whole.events)) return;
  }
}

TEST("frame parser: mutated streams never misbehave and agree across splits") {
  std::mt19937 rng(777);
  for (int round = 0; round < 3000; ++round) {
    Bytes s = anyFrames(rng, 200);
    for (int flips = static_cast<int>(rng() % 3); flips > 0; --flips)
      s[rng() % s.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    const RunResult whole = runSplit(s, {}, 150);
    CHECK(whole.ok);
    const RunResult bytes = runSplit(s, everyByte(s.size()), 150);
    if (!CHECK(bytes.ok) || !CHECK_EQ(bytes.events, whole.events)) return;
  }
}

// ---------------------------------------------------------------------------------------
// The client role: server frames, unmasked; a masked one is an error.

namespace {

// Records the events of the parser in the client role (server frames) as "text:..", "binary:..",
// "ping:..", "pong:..", "close:<code>:..", "error:<n>".
struct ParserRecorder {
  std::vector<std::string> events;
  std::string partial;
  bool onData(const uint8_t* d, size_t n, bool first, bool last, bool text) {
    if (first) partial.clear();
    partial.append(reinterpret_cast<const char*>(d), n);
    if (last) events.push_back((text ? "text:" : "binary:") + partial);
    return true;
  }
  bool onPing(const uint8_t* d, size_t n) { return control("ping:", d, n); }
  bool onPong(const uint8_t* d, size_t n) { return control("pong:", d, n); }
  bool onClose(uint16_t code, const uint8_t* d, size_t n) {
    return control(("close:" + std::to_string(code) + ":").c_str(), d, n);
  }
  void onError(ParseError e) { events.push_back("error:" + std::to_string(static_cast<int>(e))); }
  bool control(const char* kind, const uint8_t* d, size_t n) {
    events.push_back(kind + std::string(reinterpret_cast<const char*>(d), n));
    return true;
  }
};

std::vector<std::string> parseSplit(const Bytes& stream, size_t chunk, uint64_t max = 1 << 20) {
  FrameParserState st;
  const ParserLimits lim{max};
  ParserRecorder rec;
  for (size_t at = 0; at < stream.size(); at += chunk) {
    const size_t n = std::min(chunk, stream.size() - at);
    // Own allocation per piece, so a read past it is caught under ASan.
    std::unique_ptr<uint8_t[]> piece(new uint8_t[n]);
    std::memcpy(piece.get(), stream.data() + at, n);
    parseFrames<FrameRole::Client>(st, lim, piece.get(), n, rec);
  }
  return rec.events;
}

}  // namespace

TEST("client: server frame parser gives the same events however the stream is split") {
  const std::string big(70000, 'b');
  const Bytes stream = concat({
      serverFrame(1, "caf\xc3\xa9"),
      serverFrame(1, "he", false),
      serverFrame(9, "p"),
      serverFrame(0, "l\xe2\x82", false),
      serverFrame(0, "\xac", true),
      serverFrame(2, ""),
      serverFrame(2, big),
      serverFrame(10, "q"),
      serverFrame(8, closePayload(1001, "bye")),
  });
  const std::vector<std::string> want = {
      "text:caf\xc3\xa9", "ping:p", "text:hel\xe2\x82\xac", "binary:",
      "binary:" + big,    "pong:q", "close:1001:bye"};
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{4096}, stream.size()}) {
    if (parseSplit(stream, chunk) != want) FAIL("chunk " + std::to_string(chunk));
  }
}

TEST("client: server frame parser rejects what a server must not send") {
  auto errorOf = [](const Bytes& stream, uint64_t max = 1 << 20) {
    const std::vector<std::string> ev = parseSplit(stream, 1, max);
    return ev.empty() ? std::string() : ev.back();
  };
  auto err = [](ParseError e) { return "error:" + std::to_string(static_cast<int>(e)); };
  FrameOpts masked;
  CHECK_EQ(errorOf(frame(1, "x", masked)), err(ParseError::MaskedFrame));
  CHECK_EQ(errorOf(serverFrame(2, std::string(101, 'x')), 100), err(ParseError::MessageTooBig));
  CHECK_EQ(errorOf(concat({serverFrame(2, std::string(60, 'x'), false),
                           serverFrame(0, std::string(60, 'x'))}),
                   100),
           err(ParseError::MessageTooBig));
  CHECK_EQ(parseSplit(serverFrame(2, std::string(100, 'x')), 1, 100).size(), size_t{1});
  CHECK_EQ(errorOf(serverFrame(1, "\xc3")), err(ParseError::InvalidUtf8));
  CHECK_EQ(errorOf(serverFrame(1, "\xed\xa0\x80")), err(ParseError::InvalidUtf8));
  CHECK_EQ(errorOf(serverFrame(0, "x")), err(ParseError::UnexpectedContinuation));
  CHECK_EQ(errorOf(concat({serverFrame(1, "a", false), serverFrame(1, "b")})),
           err(ParseError::ExpectedContinuation));
  CHECK_EQ(errorOf(serverFrame(9, "x", false)), err(ParseError::ControlFragmented));
  CHECK_EQ(errorOf(serverFrame(9, std::string(126, 'x'))), err(ParseError::ControlTooLong));
  CHECK_EQ(errorOf(serverFrame(3, "")), err(ParseError::ReservedOpcode));
  FrameOpts rsv = unmasked();
  rsv.rsv = 0x40;
  CHECK_EQ(errorOf(frame(1, "x", rsv)), err(ParseError::ReservedBits));
  CHECK_EQ(errorOf(serverFrame(8, "x")), err(ParseError::BadCloseLength));
  CHECK_EQ(errorOf(serverFrame(8, closePayload(1005))), err(ParseError::InvalidCloseCode));
  CHECK_EQ(errorOf(serverFrame(8, closePayload(1000, "\xff"))),
           err(ParseError::InvalidCloseReason));
  FrameOpts huge = unmasked();
  huge.declaredLen = int64_t{1} << 62;
  CHECK(parseSplit(frame(2, "", huge), 1, ~uint64_t{0}).empty());  // allowed: awaits payload
  const Bytes topBit = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0};
  CHECK_EQ(errorOf(topBit, ~uint64_t{0}), err(ParseError::BadLength));
  CHECK_EQ(closeCodeFor(ParseError::MaskedFrame), kProtocolError);
  CHECK_EQ(closeCodeFor(ParseError::MessageTooBig), kTooBig);
  CHECK_EQ(closeCodeFor(ParseError::InvalidUtf8), kInvalidPayload);
}

TEST("frame parser (client role): every server-role error case, masking flipped, every split") {
  for (const ErrorCase& c : errorCases()) {
    const Bytes stream = flipMasking(c.stream);
    std::vector<Event> expect = c.expect;
    // The one error that depends on the role: a masked server frame, not an unmasked one.
    if (expect.back() == errorEvent(ParseError::UnmaskedFrame))
      expect.back() = errorEvent(ParseError::MaskedFrame);
    if (!CHECK_EQ(runSplit<FrameRole::Client>(stream, {}, c.max).events, expect)) {
      FAIL(std::string("case: ") + c.name);
      continue;
    }
    checkSplits<FrameRole::Client>(stream, c.max);
  }
}

TEST("frame parser (client role): random and mutated streams agree with the server role") {
  std::mt19937 rng(4242);
  for (int round = 0; round < 2000; ++round) {
    Bytes s = anyFrames(rng, 300);
    // Flips in the payload or the first two header bytes, where both roles read the same.
    if (rng() % 2) s[rng() % s.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    std::vector<Event> server = runSplit(s, {}, 200).events;
    if (!server.empty() && server.back() == errorEvent(ParseError::UnmaskedFrame))
      server.back() = errorEvent(ParseError::MaskedFrame);
    const Bytes c = flipMasking(s);
    const RunResult whole = runSplit<FrameRole::Client>(c, {}, 200);
    const RunResult bytes = runSplit<FrameRole::Client>(c, everyByte(c.size()), 200);
    if (!CHECK(whole.ok) || !CHECK(bytes.ok) || !CHECK_EQ(whole.events, server) ||
        !CHECK_EQ(bytes.events, server))
      return;
  }
}

TEST("frame parser (client role): a whole frame is one onData call into the buffer, unchanged") {
  const Bytes s = concat({serverFrame(kText, "Hello, world"), serverFrame(kPing, "p")});
  FrameParserState st;
  Recorder rec;
  const uint8_t* data = s.data();  // const: the client role never writes
  CHECK_EQ(parseFrames<FrameRole::Client>(st, ParserLimits{1024}, data, s.size(), rec), s.size());
  CHECK_EQ(rec.dataCalls, 1);
  CHECK(rec.lastData == s.data() + 2);
  CHECK_EQ(rec.events, (std::vector<Event>{{"text", 0, "Hello, world"}, {"ping", 0, "p"}}));
  CHECK(s == concat({serverFrame(kText, "Hello, world"), serverFrame(kPing, "p")}));
}
