// libFuzzer target for the handshake parser. The input is split into chunks (sizes taken
// from its first bytes) and fed as a growing buffer, as bytes arrive on a socket; the
// outcome must be the same as parsing the whole input at once, and a complete request's
// fields must lie inside the buffer and pass the checks the worker relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "protocol/handshake-parser.h"
#include "protocol/handshake-response.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool inside(std::string_view field, const std::string& buf) {
  return field.empty() ||
         (field.data() >= buf.data() && field.data() + field.size() <= buf.data() + buf.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t seed = data[0];
  data += 1;
  size -= 1;
  const size_t maxHeaderBytes = 256 + size_t(seed) * 16;
  const size_t maxHeaders = 4 + seed % 32;

  lapps::HandshakeParser whole(maxHeaderBytes, maxHeaders);
  const std::string all(reinterpret_cast<const char*>(data), size);
  const auto wholeStatus = whole.parse(all.data(), all.size());

  lapps::HandshakeParser parts(maxHeaderBytes, maxHeaders);
  std::string buf;
  size_t pos = 0, i = 0;
  auto status = lapps::HandshakeParser::Status::Incomplete;
  while (pos < size) {
    size_t chunk = 1 + (data[i++ % size] % 17);
    chunk = std::min(chunk, size - pos);
    buf.append(all, pos, chunk);
    pos += chunk;
    status = parts.parse(buf.data(), buf.size());
    if (status != lapps::HandshakeParser::Status::Incomplete) break;
  }
  // Stopping early is fine (the parser never looks past the blank line or the first
  // error); the outcome must not depend on how bytes arrived.
  check(status == wholeStatus ||
        (status == lapps::HandshakeParser::Status::Incomplete && pos == size &&
         wholeStatus == lapps::HandshakeParser::Status::Incomplete));
  if (status == lapps::HandshakeParser::Status::Failed) {
    check(parts.error() == whole.error());
    check(lapps::httpStatusFor(parts.error()) >= 400);
    check(std::strlen(lapps::describe(parts.error())) > 0);
  }
  if (status == lapps::HandshakeParser::Status::Complete) {
    const lapps::HandshakeRequest& r = parts.request();
    check(r.headerBytes <= buf.size() && r.headerBytes <= maxHeaderBytes + 2);
    for (std::string_view f :
         {r.method, r.host, r.key, r.version, r.protocols, r.origin, r.extensions}) {
      check(inside(f, buf));
    }
    // The route: in the buffer, or the static "/" of an absolute-form target without a path.
    check(inside(r.target, buf) || r.target == "/");
    check(r.method == "GET" && !r.target.empty() && r.target[0] == '/' && r.key.size() == 24);
    // What the worker does next must hold up too.
    std::string response;
    lapps::appendSwitchingProtocols(response, r.key,
                                    lapps::selectSubprotocol(r.protocols, {"chat", "v2"}));
    check(response.size() > 100);
  }
  return 0;
}
