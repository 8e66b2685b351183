-- Malformed, truncated and hostile CBOR, and the 64-bit integer edges.
local A, O = cbor.array, cbor.object

local function bad(name, h, text)
  test(name, function() fails(text, cbor.decode(unhex(h))) end)
end

bad("empty input", "", "truncated at byte 0")
bad("head without its 1-byte argument", "18", "truncated at byte 0")
bad("head without its 8-byte argument", "1b000000", "truncated at byte 0")
bad("string shorter than declared", "6461", "truncated at byte 0")
bad("array shorter than declared", "830102", "truncated at byte 0")
bad("array item missing", "82018201", "truncated at byte 2")
bad("map missing a value", "a16161", "truncated at byte 3")
bad("byte string declaring 2^60 bytes", "5b1000000000000000", "truncated at byte 0")
bad("text declaring 2^64-1 bytes", "7bffffffffffffffff", "truncated at byte 0")
bad("array declaring 2^60 items", "9b1000000000000000", "truncated at byte 0")
bad("map declaring 2^32 entries", "ba00000001", "truncated at byte 0")
bad("nested huge length", "8281" .. "5b1000000000000000", "truncated at byte 2")
bad("reserved additional information 28", "1c", "reserved additional information at byte 0")
bad("reserved additional information 30 in a map", "a1011e", "reserved additional information at byte 2")
bad("indefinite unsigned integer", "1f", "invalid indefinite length at byte 0")
bad("indefinite negative integer", "3f", "invalid indefinite length at byte 0")
bad("indefinite tag", "df", "invalid indefinite length at byte 0")
bad("break at top level", "ff", "unexpected break at byte 0")
bad("break inside a definite array", "8201ff", "unexpected break at byte 2")
bad("unterminated indefinite array", "9f0102", "truncated at byte 3")
bad("unterminated indefinite string", "5f4101", "truncated at byte 3")
bad("indefinite map key without value", "bf6161ff", "map key without value at byte 3")
bad("text chunk in a byte string", "5f6161ff", "invalid chunk in indefinite-length string at byte 1")
bad("nested indefinite chunk", "7f7f6161ffff", "invalid chunk in indefinite-length string at byte 1")
bad("integer chunk", "7f01ff", "invalid chunk in indefinite-length string at byte 1")
bad("UTF-8 split across chunks", "7f61c361bcff", "invalid UTF-8 in text string at byte 1")
bad("invalid UTF-8 text", "62c328", "invalid UTF-8 in text string at byte 0")
bad("surrogate in text", "63eda080", "invalid UTF-8 in text string at byte 0")
bad("trailing bytes", "0101", "trailing bytes at byte 1")
bad("two-byte simple value below 32", "f814", "unsupported simple value at byte 0")
bad("bignum under another tag", "c1c240", "unsupported bignum at byte 1")
bad("array as map key", "a18001", "unsupported map key type at byte 1")
bad("null as map key", "a1f601", "unsupported map key type at byte 1")
bad("NaN map key", "a1f97e0001", "NaN map key at byte 1")
bad("negative integer below -2^63", "3b8000000000000000", "integer below -2^63 at byte 0")

test("depth bomb: 100000 nested arrays", function()
  fails("nesting too deep at byte 64", cbor.decode(string.rep("\x81", 100000) .. "\x00"))
end)
test("depth bomb: nested indefinite maps", function()
  fails("nesting too deep", cbor.decode(string.rep("\xbf\x61\x61", 70) .. "\x00"))
end)
test("64 levels decode, 65 do not", function()
  local v = assert(cbor.decode(string.rep("\x81", 64) .. "\x00"))
  for _ = 1, 64 do v = v[1] end
  eq(v, 0)
  fails("nesting too deep", cbor.decode(string.rep("\x81", 65) .. "\x00"))
end)
test("a long tag chain is not a recursion", function()
  eq(cbor.decode(string.rep("\xc1", 100000) .. "\x01"), 1)
end)
test("every prefix of a message is a clean error", function()
  local full = cbor.encode(O { lapps = 1, method = "m", params = A { "x", 1.5, -70000, A {}, O {} } })
  for i = 0, #full - 1 do
    local v, err = cbor.decode(full:sub(1, i))
    if v ~= nil or not err:find("truncated", 1, true) then error("prefix " .. i .. ": " .. tostring(err)) end
  end
end)
test("random garbage never crashes", function()
  math.randomseed(42)
  for _ = 1, 3000 do
    local t = {}
    for j = 1, math.random(1, 24) do t[j] = string.char(math.random(0, 255)) end
    local ok, v, err = pcall(cbor.decode, table.concat(t))
    assert(ok, v)
    assert(v ~= nil or type(err) == "string")
  end
end)

-- 64-bit integers: numbers up to 2^53 in magnitude, int64/uint64 cdata beyond.
local ints = {
  { "1b0020000000000000", 2 ^ 53 },
  { "1b0020000000000001", 9007199254740993LL },
  { "3b001fffffffffffff", -2 ^ 53 },
  { "3b0020000000000000", -9007199254740993LL },
  { "1b7fffffffffffffff", 9223372036854775807LL },
  { "1b8000000000000000", 9223372036854775808ULL },
  { "3b7fffffffffffffff", -9223372036854775807LL - 1 },
  { "1bffffffffffffffff", 18446744073709551615ULL },
}
for _, c in ipairs(ints) do
  test("integer edge " .. c[1], function()
    local v = cbor.decode(unhex(c[1]))
    eq(v, c[2])
    eq(hex(cbor.encode(v)), c[1], "encodes back")
    eq(cbor.decode(cbor.encode(c[2])), c[2], "round trip")
  end)
end
test("int64 cdata compares with == against numbers", function()
  local v = cbor.decode(unhex("1b0020000000000001"))
  assert(v == 9007199254740993LL and v ~= 2 ^ 53)
  assert(cbor.decode(unhex("1b0020000000000000")) == 2 ^ 53)
end)
test("integral doubles encode as integers, others as shortest exact floats", function()
  eq(hex(cbor.encode(2 ^ 62)), "1b4000000000000000")
  eq(hex(cbor.encode(-2 ^ 63)), "3b7fffffffffffffff")
  eq(hex(cbor.encode(2 ^ 63)), "fa5f000000")
  eq(hex(cbor.encode(0.1)), "fb3fb999999999999a")
  eq(hex(cbor.encode(0.5)), "f93800")
  eq(hex(cbor.encode(1 / 3)), "fb3fd5555555555555")
  eq(hex(cbor.encode(-2 ^ -24)), "f98001")
  eq(hex(cbor.encode(2 ^ -25)), "fa33000000")
  eq(hex(cbor.encode(100000.5)), "fa47c35040")
end)

-- Encoding
test("strings: valid UTF-8 is text, anything else bytes", function()
  eq(hex(cbor.encode("h\195\169")), "6368c3a9")
  eq(hex(cbor.encode("\255\0")), "42ff00")
  eq(cbor.decode(cbor.encode("\255\0")), "\255\0")
end)
test("plain tables: sequence -> array, others -> map, empty -> map", function()
  eq(hex(cbor.encode({ 1, 2 })), "820102")
  eq(hex(cbor.encode({})), "a0")
  eq(hex(cbor.encode({ [1] = 1, [3] = 3 })), "a201010303")
  eq(hex(cbor.encode({ 1, x = 2 })), "a20101617802")
  eq(hex(cbor.encode({ [2] = "b", [1] = "a" })), "8261616162")
  eq(hex(cbor.encode({ [1.5] = 0 })), "a1f93e0000")
  eq(hex(cbor.encode({ [2 ^ 53] = 0 })), "a11b002000000000000000")
  eq(hex(cbor.encode({ [2 ^ 61] = 0 })), "a1fa5e00000000", "keys above 2^53 stay floats")
  eq(cbor.decode(cbor.encode({ [2 ^ 61] = 0 })), { [2 ^ 61] = 0 })
  fails("unsupported map key type at byte 1", cbor.decode(unhex("a11b002000000000000100")))
end)
test("markers: cbor.array{} and cbor.object{1, 2}", function()
  eq(hex(cbor.encode(A {})), "80")
  eq(hex(cbor.encode(O { "x", "y" })), "a2016178026179")
  eq(hex(cbor.encode(A())), "80")
  errors(function() A(5) end, "cbor.array: table expected, got number")
end)
test("null and nil", function()
  eq(hex(cbor.encode(cbor.null)), "f6")
  eq(hex(cbor.encode(nil)), "f6")
  eq(hex(cbor.encode(A { 1, cbor.null, 3 })), "8301f603")
  assert(cbor.null == json.null and json.null == nljson.null)
end)
test("cycles and depth are errors", function()
  local t = {}
  t.self = t
  fails("cycle", cbor.encode(t))
  local a = { {} }
  a[1][1] = a
  fails("cycle", cbor.encode(a))
  local deep = {}
  local cur = deep
  for _ = 1, 70 do cur.x = {}; cur = cur.x end
  fails("nesting too deep", cbor.encode(deep))
  local shared = { 1 }
  eq(hex(cbor.encode({ shared, shared })), "8281018101", "shared (not cyclic) tables are fine")
end)
test("unsupported values", function()
  fails("cannot encode a function", cbor.encode({ f = print }))
  fails("unsupported map key type boolean", cbor.encode({ [true] = 1 }))
  fails("cannot encode a userdata", cbor.encode(io.stdout))
  local ffi = require("ffi")
  fails("cannot encode a cdata", cbor.encode(ffi.new("int[2]")))
end)
test("misuse raises", function()
  errors(function() cbor.decode(nil) end, "cbor.decode: string expected, got nil")
  errors(function() cbor.decode(12) end, "cbor.decode: string expected, got number")
end)
test("round trip of a LAppS request", function()
  local msg = O { lapps = 1, method = "echo", params = A { O { authkey = 12345678901 }, "x", cbor.null } }
  local back = cbor.decode(cbor.encode(msg))
  eq(back, msg)
  eq(back.params[1].authkey, 12345678901)
  eq(back.params[3], cbor.null)
end)
