// libFuzzer target for the outbound client's frame parser (unmasked server frames); see
// frame-parser-fuzz.h. Its seeds (corpus/frame-parser-client) are server frames.
#include "frame-parser-fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lapps_fuzz::fuzzFrameParser<lapps::FrameRole::Client>(data, size);
}
