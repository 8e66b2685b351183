-- The murmur module: MurmurHash3 x86_32 (hashnum, x86_32) and x64_128 (hashstr, x64_128).
--
-- Vectors: the SMHasher verification values (Austin Appleby's smhasher, main.cpp:
-- 0xB0F57EE3 for MurmurHash3_x86_32, 0x6384BA69 for MurmurHash3_x64_128), reproduced with
-- its VerificationTest procedure; each single vector below was computed with Python's mmh3
-- 5.3.0 (which wraps the reference C code): mmh3.hash(s, seed, signed=False) and
-- mmh3.hash64(s, seed, signed=False) -> (h1, h2). The SMHasher values were also reproduced
-- with mmh3 before being written here.

-- { input, seed, x86_32, x64_128 as h1 .. h2 }
local vectors = {
  { "", 0, 0x00000000, "00000000000000000000000000000000" },
  { "", 1, 0x514e28b7, "4610abe56eff5cb551622daa78f83583" },
  { "", 0xffffffff, 0x81f16f39, "6af1df4d9d3bc9ec857421121ee6446b" },
  { "hello", 0, 0x248bfa47, "cbd8a7b341bd9b025b1e906a48ae1d19" },
  { "Hello, world!", 1234, 0xfaf6cdb3, "61130e64aa0ac6fe51f9046d087e1b56" },
  { "The quick brown fox jumps over the lazy dog", 0, 0x2e4ff723, "e34bbc7bbc071b6c7a433ca9c49a9347" },
  { "\0\0\0\0", 0, 0x2362f9de, "cfa0f7ddd84c76bc589623161cf526f1" },
}
-- Prefixes of one string, so every tail length of both variants and the first block loop
-- iterations are covered; seed 0x9747b28c.
local alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
local prefixes = {
  { 1, 0x7fa09ea6, "5ce8d8512db25a1d9e6dab0f9208f004" },
  { 2, 0x74875592, "8434eead1a44280b7eb933e763ce372b" },
  { 3, 0xc84a62dd, "3743630dbfc3cedccde0a23420b504bf" },
  { 4, 0xf0478627, "49b4709eac5537918a7e67e7e9d3a7bb" },
  { 5, 0xe915b832, "833751cdd39c08b5365f7a0900f3d952" },
  { 7, 0xbf71efb0, "9f4d3ffa48c1b5d2bef8ddc64e52d840" },
  { 8, 0xcf0266e4, "8ed398b0e52427fe8eed5e04098cb3d6" },
  { 9, 0x0c83ca38, "052d05672c38ef1dafaa4fa24c1b26b7" },
  { 15, 0xc4f47476, "9f4cc0dd840bba2efdf74b8300d77e47" },
  { 16, 0x12c56d4c, "924cd7e751ce99d997396ce78ef04737" },
  { 17, 0x04a1b9d0, "42eb73cd91a97da612001c04fbbee318" },
  { 31, 0xeb5d078d, "a7bbd7927a9325af5fa4cce38a3f7acd" },
  { 32, 0x7528101b, "6fb4d84db3ade2ffedfe1b24f6b0ab24" },
  { 33, 0x42712f68, "099bc82c2f7b163e6dc2347417a2d110" },
}
for _, p in ipairs(prefixes) do
  vectors[#vectors + 1] = { alphabet:sub(1, p[1]), 0x9747b28c, p[2], p[3] }
end

for _, v in ipairs(vectors) do
  local input, seed, h32, h128 = v[1], v[2], v[3], v[4]
  test(string.format("vector %q seed 0x%x", input, seed), function()
    eq(murmur.x86_32(input, seed), h32, "x86_32")
    eq(murmur.hashnum(input, seed), h32, "hashnum")
    eq(murmur.hashstr(input, seed), h128, "hashstr")
    local h1, h2 = murmur.x64_128(input, seed)
    eq({ h1, h2 }, { h128:sub(1, 16), h128:sub(17) }, "x64_128")
    if seed == 0 then
      eq(murmur.x86_32(input), h32, "default seed")
      eq(murmur.hashstr(input), h128, "default seed")
    end
  end)
end

-- SMHasher's VerificationTest: hash the keys {}, {0}, {0,1}, ..., {0..254} with seed 256 - n
-- (n = key length), lay the digests end to end in the reference's little-endian byte order,
-- hash that with seed 0; the first four bytes read as a little-endian integer must equal
-- the published value.
local function le32(n)
  return string.char(n % 256, math.floor(n / 256) % 256, math.floor(n / 65536) % 256,
    math.floor(n / 16777216) % 256)
end
local function key(n)
  local bytes = {}
  for i = 1, n do bytes[i] = i - 1 end
  return string.char(unpack(bytes))
end

test("SMHasher verification value of MurmurHash3_x86_32 is 0xB0F57EE3", function()
  local digests = {}
  for n = 0, 255 do digests[#digests + 1] = le32(murmur.x86_32(key(n), 256 - n)) end
  local blob = table.concat(digests)
  eq(#blob, 4 * 256)
  eq(murmur.x86_32(blob, 0), 0xB0F57EE3)
end)

test("SMHasher verification value of MurmurHash3_x64_128 is 0x6384BA69", function()
  local digests = {}
  for n = 0, 255 do
    local h1, h2 = murmur.x64_128(key(n), 256 - n)
    -- The reference stores h1 then h2, each a little-endian uint64.
    digests[#digests + 1] = unhex(h1):reverse() .. unhex(h2):reverse()
  end
  local blob = table.concat(digests)
  eq(#blob, 16 * 256)
  local h1 = murmur.x64_128(blob, 0)
  eq(tonumber(h1:sub(9, 16), 16), 0x6384BA69)  -- low 32 bits of h1 = its first four bytes
end)

test("numbers hash as their tostring form", function()
  for _, n in ipairs({ 42, -7, 0, 1.5, 2 ^ 53, 1e300, -0.25 }) do
    local s = tostring(n)
    eq(murmur.hashnum(n), murmur.x86_32(s), "hashnum(" .. s .. ")")
    eq(murmur.hashstr(n), murmur.hashstr(s), "hashstr(" .. s .. ")")
    eq(murmur.hashnum(n, 99), murmur.x86_32(s, 99), "hashnum(" .. s .. ", 99)")
  end
  eq(murmur.hashnum(42), 0xbc58a436, "mmh3.hash('42')")
  eq(murmur.hashstr(42), "b68fda223f324f6c89a6e71bc6804fe3", "mmh3.hash64('42')")
end)

test("results are plain numbers and lowercase hex strings of fixed width", function()
  local n = murmur.hashnum("hello")
  eq(type(n), "number")
  eq(n, math.floor(n))
  local big = murmur.x86_32(key(255), 1)  -- any result; checks the unsigned range
  if big < 0 or big > 4294967295 then error("out of range: " .. big) end
  for _, v in ipairs(vectors) do
    local s = murmur.hashstr(v[1], v[2])
    if not s:match("^[0-9a-f]+$") or #s ~= 32 then error("bad hex " .. s) end
  end
  -- Embedded NULs and high bytes are hashed as bytes.
  if murmur.x86_32("a\0b") == murmur.x86_32("a") then error("NUL truncated the input") end
end)

test("misuse raises an error naming the function", function()
  errors(function() murmur.hashnum() end, "murmur.hashnum: string or number expected, got no value")
  errors(function() murmur.hashnum({}) end, "murmur.hashnum: string or number expected, got table")
  errors(function() murmur.hashstr(nil) end, "murmur.hashstr: string or number expected, got nil")
  errors(function() murmur.hashstr(true) end, "murmur.hashstr: string or number expected, got boolean")
  errors(function() murmur.x86_32(42) end, "murmur.x86_32: string expected, got number")
  errors(function() murmur.x64_128({}) end, "murmur.x64_128: string expected, got table")
  errors(function() murmur:hashstr("x") end, "murmur.hashstr: string or number expected, got table")
  for _, bad in ipairs({ -1, 4294967296, 1.5, 0 / 0, math.huge }) do
    errors(function() murmur.x86_32("x", bad) end, "murmur.x86_32: seed must be an integer in 0..4294967295")
  end
  errors(function() murmur.hashnum("x", "1") end,
    "murmur.hashnum: seed must be an integer in 0..4294967295, got string")
  errors(function() murmur.x64_128("x", {}) end,
    "murmur.x64_128: seed must be an integer in 0..4294967295, got table")
  eq(murmur.x86_32("", 4294967295), 0x81f16f39, "largest seed")
end)
