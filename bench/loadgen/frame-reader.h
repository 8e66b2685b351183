// Streaming parser for server-to-client frames (RFC 6455 §5.2). It keeps no payload, only
// counts it: a data message is reported by its total length when its FIN frame ends, so
// fragmented replies count once. Control payloads (<= 125 bytes) are kept for the pong.
// A header split across reads is collected in a 14-byte buffer; otherwise it is read in
// place. Per-connection state is this one struct.
//
// Sink (a policy, so the read path has no indirect calls) provides:
//   bool onMessage(uint64_t payloadLen);          // a whole data message arrived
//   bool onPing(const uint8_t* payload, size_t n);
//   bool onClose();                               // close frame
//   bool onProtocolError();
//   void onData(const uint8_t* p, size_t n);     // optional: data payload bytes as they come
// Each bool returns false to stop parsing (the connection is gone).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace loadgen {

class FrameReader {
 public:
  // Feeds bytes; returns false as soon as the sink asked to stop.
  template <class Sink>
  bool feed(const uint8_t* p, const uint8_t* end, Sink& sink);

 private:
  // Header size implied by its first two bytes.
  static size_t headerSize(const uint8_t* h) {
    uint8_t len7 = h[1] & 0x7F;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
  }
  // Validates a complete header and starts its frame; false on a protocol error.
  bool begin(const uint8_t* h);
  template <class Sink>
  bool finishFrame(Sink& sink);

  uint64_t remaining_ = 0;   // payload bytes left in the current frame
  uint64_t messageLen_ = 0;  // payload bytes of the current data message so far
  bool inPayload_ = false;
  bool inMessage_ = false;  // a data frame without FIN was seen
  bool fin_ = false;
  uint8_t opcode_ = 0;
  uint8_t headerLen_ = 0;
  uint8_t controlLen_ = 0;
  uint8_t header_[14];
  uint8_t control_[125];
};

inline bool FrameReader::begin(const uint8_t* h) {
  if ((h[0] & 0x70) || (h[1] & 0x80)) return false;  // RSV bits, or a masked server frame
  fin_ = h[0] & 0x80;
  opcode_ = h[0] & 0x0F;
  uint64_t len = h[1] & 0x7F;
  if (len == 126) {
    len = (uint64_t(h[2]) << 8) | h[3];
  } else if (len == 127) {
    len = 0;
    for (int i = 2; i < 10; ++i) len = (len << 8) | h[i];
  }
  if (opcode_ & 0x08) {
    if (opcode_ > 0x0A || !fin_ || len > 125) return false;
    controlLen_ = 0;
  } else if (opcode_ > 0x02 || (opcode_ == 0) != inMessage_) {
    return false;  // unknown opcode, or continuation / new message out of sequence
  }
  remaining_ = len;
  inPayload_ = true;
  return true;
}

template <class Sink>
bool FrameReader::finishFrame(Sink& sink) {
  inPayload_ = false;
  switch (opcode_) {
    case 0x08:
      return sink.onClose();
    case 0x09:
      return sink.onPing(control_, controlLen_);
    case 0x0A:
      return true;
    default:
      if (!fin_) {
        inMessage_ = true;
        return true;
      }
      inMessage_ = false;
      uint64_t len = messageLen_;
      messageLen_ = 0;
      return sink.onMessage(len);
  }
}

template <class Sink>
bool FrameReader::feed(const uint8_t* p, const uint8_t* end, Sink& sink) {
  while (p < end) {
    if (!inPayload_) {
      if (headerLen_ == 0 && end - p >= 2 && size_t(end - p) >= headerSize(p)) {
        if (!begin(p)) return sink.onProtocolError();
        p += headerSize(p);
      } else {
        // Slow path: the header straddles reads.
        header_[headerLen_++] = *p++;
        if (headerLen_ < 2 || headerLen_ < headerSize(header_)) continue;
        headerLen_ = 0;
        if (!begin(header_)) return sink.onProtocolError();
      }
      if (remaining_ == 0 && !finishFrame(sink)) return false;
      continue;
    }
    size_t take = size_t(end - p) < remaining_ ? size_t(end - p) : size_t(remaining_);
    if (opcode_ & 0x08) {
      std::memcpy(control_ + controlLen_, p, take);
      controlLen_ = uint8_t(controlLen_ + take);
    } else {
      messageLen_ += take;
      if constexpr (requires { sink.onData(p, take); }) sink.onData(p, take);
    }
    p += take;
    remaining_ -= take;
    if (remaining_ == 0 && !finishFrame(sink)) return false;
  }
  return true;
}

}  // namespace loadgen
