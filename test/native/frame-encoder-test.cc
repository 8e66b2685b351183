// Server frame encoding, and a round trip of encoded frames through the parser (the test
// adds the client mask the parser requires).
#include <string>

#include "frames.h"
#include "protocol/frame-encoder.h"
#include "protocol/frame-parser.h"
#include "test.h"

using namespace lapps;
using namespace lapps::test;

TEST("encoder: header sizes and bytes") {
  uint8_t h[kMaxHeaderSize];
  CHECK_EQ(encodeHeader(h, Opcode::Text, 0), size_t{2});
  CHECK_EQ(h[0], 0x81);
  CHECK_EQ(h[1], 0);
  CHECK_EQ(encodeHeader(h, Opcode::Binary, 125, false), size_t{2});
  CHECK_EQ(h[0], 0x02);
  CHECK_EQ(h[1], 125);
  CHECK_EQ(encodeHeader(h, Opcode::Binary, 126), size_t{4});
  CHECK_EQ(h[1], 126);
  CHECK_EQ(h[2], 0);
  CHECK_EQ(h[3], 126);
  CHECK_EQ(encodeHeader(h, Opcode::Binary, 65535), size_t{4});
  CHECK_EQ(h[2], 0xFF);
  CHECK_EQ(h[3], 0xFF);
  CHECK_EQ(encodeHeader(h, Opcode::Continuation, 65536), size_t{10});
  CHECK_EQ(h[0], 0x80);
  CHECK_EQ(h[1], 127);
  const uint8_t want[] = {0, 0, 0, 0, 0, 1, 0, 0};
  CHECK(std::memcmp(h + 2, want, 8) == 0);
  CHECK_EQ(encodeHeader(h, Opcode::Pong, 0x0102030405060708ull), size_t{10});
  const uint8_t want2[] = {1, 2, 3, 4, 5, 6, 7, 8};
  CHECK(std::memcmp(h + 2, want2, 8) == 0);
  CHECK_EQ(h[0], 0x8A);
}

TEST("encoder: close payloads, reason cut at a UTF-8 boundary") {
  uint8_t out[125];
  CHECK_EQ(encodeClosePayload(out, kNormal, ""), size_t{2});
  CHECK_EQ(out[0], 0x03);
  CHECK_EQ(out[1], 0xE8);
  CHECK_EQ(encodeClosePayload(out, kNoStatus, "ignored"), size_t{0});
  CHECK_EQ(encodeClosePayload(out, kGoingAway, std::string(123, 'a')), size_t{125});
  CHECK_EQ(encodeClosePayload(out, kGoingAway, std::string(200, 'a')), size_t{125});
  // 122 ASCII + "é": byte 123 would split é, so the reason keeps 122 bytes.
  const std::string r = std::string(122, 'a') + "\xc3\xa9";
  CHECK_EQ(encodeClosePayload(out, kPolicy, r), size_t{2 + 122});
  // 120 ASCII + "€" (3 bytes) ends exactly at 123: kept whole.
  const std::string e = std::string(120, 'a') + "\xe2\x82\xac" + "tail";
  CHECK_EQ(encodeClosePayload(out, kPolicy, e), size_t{125});
  CHECK(lapps::isValidUtf8(out + 2, 123));
  const std::string f = std::string(121, 'a') + "\xf0\x9f\x98\x80";
  CHECK_EQ(encodeClosePayload(out, kPolicy, f), size_t{2 + 121});
}

namespace {

// Turns a server frame (header + payload) into the client frame the parser expects.
Bytes maskFrame(const uint8_t* header, size_t h, const std::string& payload, uint32_t key) {
  Bytes b(header, header + h);
  b[1] |= 0x80;
  const uint8_t k[4] = {static_cast<uint8_t>(key >> 24), static_cast<uint8_t>(key >> 16),
                        static_cast<uint8_t>(key >> 8), static_cast<uint8_t>(key)};
  b.insert(b.end(), k, k + 4);
  for (size_t i = 0; i < payload.size(); ++i)
    b.push_back(static_cast<uint8_t>(payload[i]) ^ k[i % 4]);
  return b;
}

}  // namespace

TEST("encoder: frames round-trip through the parser") {
  Bytes stream;
  std::vector<Event> expect;
  uint8_t h[kMaxHeaderSize];
  for (size_t n : {0, 1, 125, 126, 127, 65535, 65536, 70000}) {
    const std::string payload(n, static_cast<char>('a' + n % 26));
    const Bytes f = maskFrame(h, encodeHeader(h, n % 2 ? Opcode::Text : Opcode::Binary, n), payload,
                              static_cast<uint32_t>(n * 2654435761u));
    stream.insert(stream.end(), f.begin(), f.end());
    expect.push_back({n % 2 ? "text" : "binary", 0, payload});
  }
  // A fragmented message with a ping in the middle.
  const Bytes a = maskFrame(h, encodeHeader(h, Opcode::Text, 3, false), "abc", 1);
  const Bytes p = maskFrame(h, encodeHeader(h, Opcode::Ping, 2), "hi", 2);
  const Bytes c = maskFrame(h, encodeHeader(h, Opcode::Continuation, 3), "def", 3);
  uint8_t cp[125];
  const size_t cn = encodeClosePayload(cp, kGoingAway, "shutting down");
  const std::string closeBody(reinterpret_cast<const char*>(cp), cn);
  const Bytes cl = maskFrame(h, encodeHeader(h, Opcode::Close, cn), closeBody, 4);
  stream = concat({stream, a, p, c, cl});
  expect.push_back({"ping", 0, "hi"});
  expect.push_back({"text", 0, "abcdef"});
  expect.push_back({"close", 1001, "shutting down"});
  CHECK_EQ(runSplit(stream, {}).events, expect);
  CHECK_EQ(runSplit(stream, chunked(stream.size(), 777)).events, expect);
}
