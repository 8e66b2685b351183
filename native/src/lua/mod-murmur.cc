#include "lua/mod-murmur.h"

#include <lua.hpp>

#include <bit>
#include <cstring>

namespace lapps {

namespace {

// Blocks are read as little-endian words, which is what the reference does on x86.
uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
  return v;
}

uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

// Little-endian value of the `n` (< 8) bytes at p.
uint64_t loadTail(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  k ^= k >> 33;
  return k;
}

constexpr uint32_t kC1x86 = 0xcc9e2d51u, kC2x86 = 0x1b873593u;
constexpr uint64_t kC1x64 = 0x87c37b91114253d5ull, kC2x64 = 0x4cf5ad432745937full;

uint32_t mixK32(uint32_t k) {
  return std::rotl(k * kC1x86, 15) * kC2x86;
}
uint64_t mixK1(uint64_t k) {
  return std::rotl(k * kC1x64, 31) * kC2x64;
}
uint64_t mixK2(uint64_t k) {
  return std::rotl(k * kC2x64, 33) * kC1x64;
}

}  // namespace

uint32_t murmur3X86_32(const void* data, size_t size, uint32_t seed) {
  const auto* p = static_cast<const uint8_t*>(data);
  const size_t blocks = size / 4;
  uint32_t h = seed;
  for (size_t i = 0; i < blocks; ++i) {
    h ^= mixK32(load32(p + i * 4));
    h = std::rotl(h, 13) * 5 + 0xe6546b64u;
  }
  // A missing tail mixes to 0, so it needs no special case.
  h ^= mixK32(uint32_t(loadTail(p + blocks * 4, size & 3)));
  // The reference mixes in the length as a 32-bit int.
  h ^= uint32_t(size);
  return fmix32(h);
}

Murmur128 murmur3X64_128(const void* data, size_t size, uint32_t seed) {
  const auto* p = static_cast<const uint8_t*>(data);
  const size_t blocks = size / 16;
  uint64_t h1 = seed, h2 = seed;
  for (size_t i = 0; i < blocks; ++i) {
    h1 ^= mixK1(load64(p + i * 16));
    h1 = (std::rotl(h1, 27) + h2) * 5 + 0x52dce729;
    h2 ^= mixK2(load64(p + i * 16 + 8));
    h2 = (std::rotl(h2, 31) + h1) * 5 + 0x38495ab5;
  }
  const uint8_t* tail = p + blocks * 16;
  const size_t rest = size & 15;
  if (rest > 8) h2 ^= mixK2(loadTail(tail + 8, rest - 8));
  h1 ^= mixK1(rest >= 8 ? load64(tail) : loadTail(tail, rest));
  h1 ^= uint64_t(size);
  h2 ^= uint64_t(size);
  h1 += h2;
  h2 += h1;
  h1 = fmix64(h1);
  h2 = fmix64(h2);
  h1 += h2;
  h2 += h1;
  return {h1, h2};
}

namespace {

constexpr double kMaxSeed = 4294967295.0;

// Raises the misuse error unless argument 1 is a string (or, when numbers is set, a number).
void checkInput(lua_State* L, const char* fn, bool numbers) {
  int t = lua_type(L, 1);
  if (t == LUA_TSTRING || (numbers && t == LUA_TNUMBER)) return;
  luaL_error(L, "%s: %s expected, got %s", fn, numbers ? "string or number" : "string",
             luaL_typename(L, 1));
}

// The bytes of argument 1 (checked): lua_tolstring converts a number in place, so it
// converts a copy, left on the stack for as long as the pointer is used. For a number the
// text is tostring()'s.
const char* inputBytes(lua_State* L, size_t& size) {
  lua_pushvalue(L, 1);
  return lua_tolstring(L, -1, &size);
}

uint32_t checkSeed(lua_State* L, const char* fn) {
  if (lua_isnoneornil(L, 2)) return 0;
  double d = lua_type(L, 2) == LUA_TNUMBER ? lua_tonumber(L, 2) : -1;
  if (!(d >= 0 && d <= kMaxSeed && d == double(uint32_t(d)))) {
    luaL_error(L, "%s: seed must be an integer in 0..4294967295, got %s", fn,
               lua_type(L, 2) == LUA_TNUMBER ? lua_tostring(L, 2) : luaL_typename(L, 2));
  }
  return uint32_t(d);
}

void pushHex64(lua_State* L, uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  char out[16];
  for (int i = 15; i >= 0; --i, v >>= 4) out[i] = kDigits[v & 15];
  lua_pushlstring(L, out, sizeof out);
}

int hash32(lua_State* L, const char* fn, bool numbers) {
  checkInput(L, fn, numbers);
  uint32_t seed = checkSeed(L, fn);
  size_t n;
  const char* s = inputBytes(L, n);
  lua_pushnumber(L, double(murmur3X86_32(s, n, seed)));
  return 1;
}

Murmur128 hash128(lua_State* L, const char* fn, bool numbers) {
  checkInput(L, fn, numbers);
  uint32_t seed = checkSeed(L, fn);
  size_t n;
  const char* s = inputBytes(L, n);
  return murmur3X64_128(s, n, seed);
}

int hashnum(lua_State* L) {
  return hash32(L, "murmur.hashnum", true);
}
int x86_32(lua_State* L) {
  return hash32(L, "murmur.x86_32", false);
}

int hashstr(lua_State* L) {
  Murmur128 h = hash128(L, "murmur.hashstr", true);
  pushHex64(L, h.h1);
  pushHex64(L, h.h2);
  lua_concat(L, 2);
  return 1;
}

int x64_128(lua_State* L) {
  Murmur128 h = hash128(L, "murmur.x64_128", false);
  pushHex64(L, h.h1);
  pushHex64(L, h.h2);
  return 2;
}

}  // namespace

int openMurmur(lua_State* L) {
  lua_createtable(L, 0, 4);
  lua_pushcfunction(L, hashnum);
  lua_setfield(L, -2, "hashnum");
  lua_pushcfunction(L, hashstr);
  lua_setfield(L, -2, "hashstr");
  lua_pushcfunction(L, x86_32);
  lua_setfield(L, -2, "x86_32");
  lua_pushcfunction(L, x64_128);
  lua_setfield(L, -2, "x64_128");
  return 1;
}

}  // namespace lapps
