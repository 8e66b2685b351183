// libFuzzer target for the server's frame parser (masked client frames); see
// frame-parser-fuzz.h. frame-parser-client.cc fuzzes the client role.
#include "frame-parser-fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lapps_fuzz::fuzzFrameParser<lapps::FrameRole::Server>(data, size);
}
