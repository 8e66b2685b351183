// Close codes and the ParseError table.
#include <cstring>
#include <set>
#include <string>

#include "protocol/close-code.h"
#include "protocol/opcode.h"
#include "protocol/parse-error.h"
#include "test.h"

using namespace lapps;

TEST("close codes: isValidCloseCode over all 65536 values") {
  size_t bad = 0;
  for (uint32_t c = 0; c <= 0xFFFF; ++c) {
    const bool want =
        (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
    if (isValidCloseCode(static_cast<uint16_t>(c)) != want) ++bad;
  }
  CHECK_EQ(bad, size_t{0});
  for (uint16_t c : {1004, 1005, 1006, 1015, 999, 1016, 2999, 5000}) CHECK(!isValidCloseCode(c));
  CHECK_EQ(kNormal, 1000);
  CHECK_EQ(kTooBig, 1009);
  CHECK_EQ(kInternalError, 1011);
}

TEST("opcodes: isControl") {
  CHECK(!isControl(Opcode::Continuation));
  CHECK(!isControl(Opcode::Text));
  CHECK(!isControl(Opcode::Binary));
  CHECK(isControl(Opcode::Close));
  CHECK(isControl(Opcode::Ping));
  CHECK(isControl(Opcode::Pong));
}

TEST("parse errors: close codes and short distinct reasons") {
  using E = ParseError;
  for (E e : {E::ReservedBits, E::ReservedOpcode, E::UnmaskedFrame, E::ControlTooLong,
              E::ControlFragmented, E::UnexpectedContinuation, E::ExpectedContinuation,
              E::BadCloseLength, E::InvalidCloseCode, E::BadLength})
    CHECK_EQ(closeCodeFor(e), 1002);
  CHECK_EQ(closeCodeFor(E::MessageTooBig), 1009);
  CHECK_EQ(closeCodeFor(E::InvalidUtf8), 1007);
  CHECK_EQ(closeCodeFor(E::InvalidCloseReason), 1007);
  std::set<std::string> seen;
  for (int i = 0; i <= static_cast<int>(E::BadLength); ++i) {
    const char* r = describe(static_cast<E>(i));
    CHECK(r != nullptr && std::strlen(r) > 0 && std::strlen(r) < 123);
    CHECK(seen.insert(r).second);
  }
  CHECK_EQ(std::string(describe(E::ReservedBits)), "reserved bits set");
}
