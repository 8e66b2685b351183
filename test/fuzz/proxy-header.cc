// libFuzzer target for the PROXY protocol header parser (v1 and v2). Every prefix of the
// input must give NeedMore or the same answer as the whole input (a header is decided by
// its own bytes, never by what follows), a Done header must lie inside the input, and an
// Invalid one must say why.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "protocol/proxy-header.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lapps::ProxyHeader whole;
  const char* why = nullptr;
  const lapps::ProxyParse r = lapps::parseProxyHeader(data, size, whole, why);
  if (r == lapps::ProxyParse::Done) {
    check(whole.length > 0 && whole.length <= size && whole.length <= lapps::kMaxProxyHeader);
    check(whole.version == 1 || whole.version == 2);
  }
  if (r == lapps::ProxyParse::Invalid) check(why != nullptr);
  if (r == lapps::ProxyParse::NeedMore) check(size < lapps::kMaxProxyHeader);
  for (size_t n = 0; n < size && n <= lapps::kMaxProxyHeader; ++n) {
    lapps::ProxyHeader part;
    const char* partWhy = nullptr;
    const lapps::ProxyParse p = lapps::parseProxyHeader(data, n, part, partWhy);
    if (p == lapps::ProxyParse::NeedMore) continue;
    check(p == r);  // decided early: the same answer as with more bytes
    if (p == lapps::ProxyParse::Done) check(part.length == whole.length && part.length <= n);
    break;
  }
  return 0;
}
