-- RFC 8949 Appendix A: every example that maps onto the Lua value model decodes to the
-- expected value; those whose encoding is the one lapps writes (canonical = true) also
-- encode back to the same bytes. Integral floats come back as integers and byte strings
-- that are valid UTF-8 as text, so those are decode-only.
local null = cbor.null
local A = cbor.array
local O = cbor.object

local examples = {
  { "00", 0, true }, { "01", 1, true }, { "0a", 10, true }, { "17", 23, true },
  { "1818", 24, true }, { "1819", 25, true }, { "1864", 100, true },
  { "1903e8", 1000, true }, { "1a000f4240", 1000000, true },
  { "1b000000e8d4a51000", 1000000000000, true },
  { "1bffffffffffffffff", 18446744073709551615ULL, true },
  { "20", -1, true }, { "29", -10, true }, { "3863", -100, true }, { "3903e7", -1000, true },
  { "f90000", 0, false }, { "f98000", 0, false }, { "f93c00", 1, false },
  { "fb3ff199999999999a", 1.1, true }, { "f93e00", 1.5, true }, { "f97bff", 65504, false },
  { "fa47c35000", 100000, false }, { "fa7f7fffff", 3.4028234663852886e+38, false },
  { "fb7e37e43c8800759c", 1.0e+300, false }, { "f90001", 5.960464477539063e-8, true },
  { "f90400", 0.00006103515625, true }, { "f9c400", -4, false },
  { "fbc010666666666666", -4.1, true },
  { "f97c00", math.huge, true }, { "f97e00", 0 / 0, true }, { "f9fc00", -math.huge, true },
  { "fa7f800000", math.huge, false }, { "fa7fc00000", 0 / 0, false },
  { "faff800000", -math.huge, false }, { "fb7ff0000000000000", math.huge, false },
  { "fb7ff8000000000000", 0 / 0, false }, { "fbfff0000000000000", -math.huge, false },
  { "f4", false, true }, { "f5", true, true }, { "f6", null, true }, { "f7", null, false },
  { "c074323031332d30332d32315432303a30343a30305a", "2013-03-21T20:04:00Z", false },
  { "c11a514b67b0", 1363896240, false }, { "c1fb41d452d9ec200000", 1363896240.5, false },
  { "d74401020304", "\1\2\3\4", false }, { "d818456449455446", "dIETF", false },
  { "d82076687474703a2f2f7777772e6578616d706c652e636f6d", "http://www.example.com", false },
  { "40", "", false }, { "4401020304", "\1\2\3\4", false },
  { "60", "", true }, { "6161", "a", true }, { "6449455446", "IETF", true },
  { "62225c", "\"\\", true }, { "62c3bc", "\195\188", true }, { "63e6b0b4", "\230\176\180", true },
  { "64f0908591", "\240\144\133\145", true },
  { "80", A {}, true }, { "83010203", A { 1, 2, 3 }, true },
  { "8301820203820405", A { 1, A { 2, 3 }, A { 4, 5 } }, true },
  { "98190102030405060708090a0b0c0d0e0f101112131415161718181819",
    A { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25 },
    true },
  { "a0", O {}, true }, { "a201020304", O { [1] = 2, [3] = 4 }, true },
  { "a26161016162820203", O { a = 1, b = A { 2, 3 } }, true },
  { "826161a161626163", A { "a", O { b = "c" } }, true },
  { "a56161614161626142616361436164614461656145",
    O { a = "A", b = "B", c = "C", d = "D", e = "E" }, true },
  { "5f42010243030405ff", "\1\2\3\4\5", false },
  { "7f657374726561646d696e67ff", "streaming", false },
  { "9fff", A {}, false },
  { "9f018202039f0405ffff", A { 1, A { 2, 3 }, A { 4, 5 } }, false },
  { "9f01820203820405ff", A { 1, A { 2, 3 }, A { 4, 5 } }, false },
  { "83018202039f0405ff", A { 1, A { 2, 3 }, A { 4, 5 } }, false },
  { "83019f0203ff820405", A { 1, A { 2, 3 }, A { 4, 5 } }, false },
  { "9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff",
    A { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25 },
    false },
  { "bf61610161629f0203ffff", O { a = 1, b = A { 2, 3 } }, false },
  { "826161bf61626163ff", A { "a", O { b = "c" } }, false },
  { "bf6346756ef563416d7421ff", O { Fun = true, Amt = -2 }, false },
}

for _, ex in ipairs(examples) do
  local h, want, canonical = ex[1], ex[2], ex[3]
  test("decode " .. h, function()
    local v, err = cbor.decode(unhex(h))
    if err then error(err) end
    eq(v, want)
    if type(want) == "table" then
      eq(getmetatable(v), getmetatable(want), "array/object marker")
    end
  end)
  if canonical then
    test("encode back " .. h, function() eq(hex(cbor.encode(want)), h) end)
  end
end

-- Examples lapps refuses on purpose: bignums (tags 2/3), integers below -2^63 and simple
-- values without a Lua meaning.
local refused = {
  { "c249010000000000000000", "unsupported bignum at byte 0" },
  { "c349010000000000000000", "unsupported bignum at byte 0" },
  { "3bffffffffffffffff", "integer below -2^63 at byte 0" },
  { "f0", "unsupported simple value at byte 0" },
  { "f8ff", "unsupported simple value at byte 0" },
}
for _, ex in ipairs(refused) do
  test("refuse " .. ex[1], function() fails(ex[2], cbor.decode(unhex(ex[1]))) end)
end
