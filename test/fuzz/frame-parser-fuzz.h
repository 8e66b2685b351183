// The frame parser's libFuzzer target, for either role (protocol/frame-parser.h): the server
// parsing masked client frames (frame-parser.cc) or the client parsing unmasked server frames
// (frame-parser-client.cc). The same bytes are parsed whole and split at points taken from the
// input; both must produce the same events (payload bytes per message, control frames, the
// same error), and no message may exceed the limit. Each input runs twice: with a message
// limit only, and with frame-size and fragment limits too.
//
// Input: byte 0 sets the limits, byte 1 the split stride, the rest is the stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "protocol/frame-parser.h"

namespace lapps_fuzz {

inline void check(bool ok) {
  if (!ok) std::abort();
}

struct Sink {
  std::string events;   // a transcript of everything delivered
  std::string message;  // the message being assembled
  uint64_t limit = 0;
  bool closed = false;

  bool onData(const uint8_t* data, size_t len, bool first, bool last, bool text) {
    // Only whole messages go into the transcript: how much of a message that later fails
    // was delivered first depends on where the bytes were split.
    if (first) message.clear();
    message.append(reinterpret_cast<const char*>(data), len);
    check(message.size() <= limit);
    if (last) {
      events += text ? 'T' : 'B';
      events += std::to_string(message.size());
      events += ':';
      events += message;
      events += ';';
      message.clear();
    }
    return true;
  }
  bool onPing(const uint8_t* p, size_t len) {
    events.append("ping").append(reinterpret_cast<const char*>(p), len).append(";");
    return true;
  }
  bool onPong(const uint8_t* p, size_t len) {
    events.append("pong").append(reinterpret_cast<const char*>(p), len).append(";");
    return true;
  }
  bool onClose(uint16_t code, const uint8_t* reason, size_t len) {
    events.append("close").append(std::to_string(code));
    events.append(reinterpret_cast<const char*>(reason), len).append(";");
    closed = true;
    return false;
  }
  void onError(lapps::ParseError e) {
    events.append("error").append(std::to_string(int(e))).append(";");
  }
};

template <lapps::FrameRole R>
std::string run(std::vector<uint8_t> bytes, const std::vector<size_t>& cuts,
                const lapps::ParserLimits& lim) {
  lapps::FrameParserState st;
  Sink sink;
  sink.limit = lim.maxMessageSize;
  size_t pos = 0;
  for (size_t cut : cuts) {
    if (sink.closed || st.failed()) break;
    size_t end = std::min(cut, bytes.size());
    if (end <= pos) continue;
    lapps::parseFrames<R>(st, lim, bytes.data() + pos, end - pos, sink);
    pos = end;
  }
  return sink.events;
}

// The whole target for role R: its LLVMFuzzerTestOneInput.
template <lapps::FrameRole R>
int fuzzFrameParser(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const lapps::ParserLimits lim{1 + (uint64_t(data[0]) << 4)};
  const uint8_t stride = data[1];
  // The same stream again with small frame-size and fragment-count limits as well.
  lapps::ParserLimits tight = lim;
  tight.maxFrameSize = 1 + (stride & 0x3F);
  tight.maxFragments = 1 + (data[0] & 7);
  std::vector<uint8_t> bytes(data + 2, data + size);
  std::vector<size_t> all{bytes.size()};
  std::vector<size_t> split;
  for (size_t at = 0; at < bytes.size();) {
    at += 1 + (bytes[at] ^ stride) % 23;
    split.push_back(std::min(at, bytes.size()));
  }
  // The server role unmasks in place: each run gets its own copy.
  check(run<R>(bytes, all, lim) == run<R>(bytes, split, lim));
  check(run<R>(bytes, all, tight) == run<R>(bytes, split, tight));
  return 0;
}

}  // namespace lapps_fuzz
