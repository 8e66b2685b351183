// unmask(): every length, payload offset and buffer alignment against a byte-wise XOR.
#include <random>
#include <vector>

#include "protocol/unmask.h"
#include "test.h"

using namespace lapps;

TEST("unmask: matches byte-wise XOR for every length, offset and alignment") {
  std::mt19937 rng(5);
  const uint8_t mask[4] = {0x12, 0xA5, 0x00, 0xFF};
  std::vector<uint8_t> src(400 + 16);
  for (uint8_t& b : src) b = static_cast<uint8_t>(rng());
  size_t bad = 0;
  for (size_t len = 0; len <= 300; ++len)
    for (size_t offset = 0; offset < 8; ++offset)
      for (size_t align = 0; align < 16; ++align) {
        std::vector<uint8_t> buf(src);
        unmask(buf.data() + align, len, mask, offset);
        for (size_t i = 0; i < buf.size(); ++i) {
          const bool inside = i >= align && i < align + len;
          const uint8_t want = inside ? src[i] ^ mask[(i - align + offset) % 4] : src[i];
          if (buf[i] != want) ++bad;
        }
      }
  CHECK_EQ(bad, size_t{0});
}

TEST("unmask: a payload unmasked piece by piece equals unmasking it whole") {
  std::mt19937 rng(6);
  const uint8_t mask[4] = {1, 2, 3, 4};
  std::vector<uint8_t> data(1 << 20);
  for (uint8_t& b : data) b = static_cast<uint8_t>(rng());
  std::vector<uint8_t> whole(data), pieces(data);
  unmask(whole.data(), whole.size(), mask, 0);
  for (size_t off = 0; off < pieces.size();) {
    const size_t n = std::min<size_t>(1 + rng() % 5000, pieces.size() - off);
    unmask(pieces.data() + off, n, mask, off);
    off += n;
  }
  CHECK(whole == pieces);
  unmask(whole.data(), whole.size(), mask, 0);  // masking is an involution
  CHECK(whole == data);
}
