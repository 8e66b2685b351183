// Micro-benchmark of server frame building: lapps::encodeHeader plus the payload copy, back
// to back into a read-buffer-sized output buffer, the way a send path fills its write
// buffer. Reference point from the issue: lem-websocket builds about 6.4 M unmasked 32-byte
// frames per second.
//
// Usage: lapps-bench-encoder [--json] [--quick]
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "bench-util.h"
#include "protocol/frame-encoder.h"

namespace {

using lapps::bench::Clock;

constexpr size_t kBufferTarget = 256 * 1024;

struct Case {
  const char* name;
  size_t payload;
  lapps::Opcode opcode;
};

lapps::bench::Result runCase(const lapps::bench::Options& o, const Case& c, uint64_t& checksum) {
  std::vector<uint8_t> payload(c.payload);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(' ' + i % 95);
  const size_t frameMax = lapps::kMaxHeaderSize + c.payload;
  const size_t frames = kBufferTarget / frameMax > 0 ? kBufferTarget / frameMax : 1;
  std::vector<uint8_t> out(frames * frameMax);

  uint64_t sum = 0;
  uint64_t passes = 0;
  auto pass = [&] {
    // Read the size through memory each pass, so it is not a compile-time constant.
    volatile size_t opaqueLen = c.payload;
    const size_t len = opaqueLen;
    uint8_t* const dst = out.data();
    const uint8_t* const src = payload.data();
    const auto t0 = Clock::now();
    size_t pos = 0;
    for (size_t i = 0; i < frames; ++i) {
      pos += lapps::encodeHeader(dst + pos, c.opcode, len);
      std::memcpy(dst + pos, src, len);
      pos += len;
    }
    lapps::bench::clobberMemory();
    const auto t1 = Clock::now();
    sum = sum * 31 + pos + dst[(passes++ * 7919) % pos];
    return lapps::bench::elapsedNs(t0, t1);
  };
  lapps::bench::Result r =
      lapps::bench::measure(o, c.name, c.payload, c.opcode == lapps::Opcode::Text, frames, pass);
  checksum = checksum * 1000003 + sum;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const lapps::bench::Options o = lapps::bench::parseOptions(argc, argv, "lapps-bench-encoder");
  // 32 B is the reference case; the others take the 2-, 4- and 10-byte header paths.
  static const Case kCases[] = {
      {"binary-32", 32, lapps::Opcode::Binary},     {"text-32", 32, lapps::Opcode::Text},
      {"binary-125", 125, lapps::Opcode::Binary},   {"binary-1k", 1024, lapps::Opcode::Binary},
      {"binary-64k", 65536, lapps::Opcode::Binary},
  };
  std::vector<lapps::bench::Result> results;
  uint64_t checksum = 0;
  for (const Case& c : kCases) results.push_back(runCase(o, c, checksum));
  lapps::bench::print(o, "frame-encoder", results, checksum);
  return 0;
}
