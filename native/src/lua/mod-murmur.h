// MurmurHash3 (Austin Appleby's public-domain algorithm, written here from its description)
// and the preloadable `murmur` module (LAppS), dot calls:
//   murmur.hashnum(v[, seed])    MurmurHash3_x86_32 of v, a number 0..2^32-1
//   murmur.hashstr(v[, seed])    MurmurHash3_x64_128 of v as 32 lowercase hex digits: h1
//                                then h2, each printed as a 16-digit big-endian number
//   murmur.x86_32(s[, seed])     the same number as hashnum, for a string only
//   murmur.x64_128(s[, seed])    h1, h2: two strings of 16 lowercase hex digits (a Lua number
//                                cannot hold 64 bits), so h1 .. h2 == hashstr(s, seed)
// v is a string (its bytes) or a number (the bytes of tostring(v), e.g. "42", "1.5").
// seed is an integer 0..2^32-1, default 0. Misuse (a missing or wrong-typed v, a bad seed)
// raises a Lua error naming the function. Results equal the reference implementation's on a
// little-endian machine (SMHasher verification values 0xB0F57EE3 and 0x6384BA69).
#pragma once

#include <cstddef>
#include <cstdint>

struct lua_State;

namespace lapps {

struct Murmur128 {
  uint64_t h1;
  uint64_t h2;
};

uint32_t murmur3X86_32(const void* data, size_t size, uint32_t seed);
Murmur128 murmur3X64_128(const void* data, size_t size, uint32_t seed);

// Pushes the module table (a lua_CFunction).
int openMurmur(lua_State* L);

}  // namespace lapps
