// libFuzzer target for the HTTP/1.1 response parser lapps.http uses
// (client/http-response-parser.h). Byte 0 picks the limits and whether the request was
// HEAD, byte 1 where the stream is split; the rest is the response, fed whole and in
// pieces, then EOF. Both runs must agree, stay within the limits, and never take bytes
// past a complete response.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "client/http-response-parser.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

struct Run {
  lapps::HttpResponseParser::Status status;
  lapps::HttpResponseError error;
  std::string body;
  size_t used = 0;
};

Run feed(const lapps::HttpResponseLimits& limits, bool head, const uint8_t* data, size_t size,
         size_t step) {
  lapps::HttpResponseParser p(limits);
  p.reset(head);
  size_t used = 0;
  for (size_t at = 0; at < size; at += step) {
    const size_t n = std::min(step, size - at);
    const size_t took = p.feed(reinterpret_cast<const char*>(data + at), n);
    check(took <= n);
    used += took;
    if (p.status() != lapps::HttpResponseParser::Status::NeedMore) break;
    check(took == n);
  }
  p.finish();
  check(p.status() != lapps::HttpResponseParser::Status::NeedMore);
  check(p.body().size() <= limits.maxBodyBytes);
  if (p.status() == lapps::HttpResponseParser::Status::Complete) {
    check(p.statusCode() >= 200 && p.statusCode() <= 599);
    check(p.headers().size() <= limits.maxHeaders);
  } else {
    check(p.error() != lapps::HttpResponseError::None);
  }
  return {p.status(), p.error(), p.body(), used};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  lapps::HttpResponseLimits limits;
  limits.maxHeaderBytes = 64 + size_t(data[0] & 0x3F) * 32;
  limits.maxHeaders = 1 + (data[0] >> 6) * 8;
  limits.maxBodyBytes = size_t(data[1] & 0x7F) * 8;
  const bool head = data[0] & 0x40;
  const size_t step = 1 + data[1] % 13;
  data += 2;
  size -= 2;
  const Run whole = feed(limits, head, data, size, size ? size : 1);
  const Run parts = feed(limits, head, data, size, step);
  check(whole.status == parts.status && whole.error == parts.error && whole.body == parts.body &&
        whole.used == parts.used);
  return 0;
}
