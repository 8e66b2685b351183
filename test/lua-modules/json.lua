-- The json module: RFC 8259 strict parsing, 64-bit integers, escapes, errors with
-- line:column, and deterministic encoding.
local A, O, null = json.array, json.object, json.null

local good = {
  { "0", 0 }, { "-0", 0 }, { "-0.0", -0.0 }, { "1.5e3", 1500 }, { "1E-2", 0.01 },
  { "true", true }, { "false", false }, { "null", null }, { ' "x" ', "x" },
  { "[]", A {} }, { "{}", O {} }, { "[1,[2,[3]]]", A { 1, A { 2, A { 3 } } } },
  { '{"a":{"b":[null,true]}}', O { a = O { b = A { null, true } } } },
  { "9007199254740992", 2 ^ 53 }, { "9007199254740993", 9007199254740993LL },
  { "-9007199254740993", -9007199254740993LL },
  { "9223372036854775807", 9223372036854775807LL },
  { "-9223372036854775808", -9223372036854775807LL - 1 },
  { "18446744073709551615", 18446744073709551615ULL },
  { "18446744073709551616", 18446744073709551616 },
  { "-9223372036854775809", -9223372036854775809 },
  { "1e400", math.huge }, { "-1e400", -math.huge }, { "1e-400", 0 },
  { '"\\u00e9\\n\\t\\"\\\\\\/"', "\195\169\n\t\"\\/" },
  { '"\\ud83d\\ude00"', "\240\159\152\128" },
  { '"\\u0000"', "\0" },
  { '"h\195\169"', "h\195\169" },
  { '{"a":1,"a":2}', O { a = 2 } },
  { " \t\r\n[ 1 , 2 ]\n", A { 1, 2 } },
}
for _, c in ipairs(good) do
  test("decode " .. c[1], function()
    local v, err = json.decode(c[1])
    if err then error(err) end
    eq(v, c[2])
  end)
end

local bad = {
  { "", "1:1: unexpected end of input" },
  { "[1,]", "1:4: unexpected character" },
  { "{\"a\":1,}", "1:8: expected a string key" },
  { "[1 2]", "1:4: expected ',' or ']'" },
  { "{\"a\" 1}", "1:6: expected ':'" },
  { "{a:1}", "1:2: expected a string key" },
  { "// c\n1", "1:1: unexpected character" },
  { "[1]\n/* */", "2:1: unexpected data after the value" },
  { "01", "1:1: leading zero" },
  { "1.", "1:3: digit expected after '.'" },
  { ".5", "1:1: unexpected character" },
  { "1e", "1:3: digit expected in exponent" },
  { "+1", "1:1: unexpected character" },
  { "-", "1:2: invalid number" },
  { "NaN", "1:1: unexpected character" },
  { "tru", "1:1: invalid literal" },
  { "nul", "1:1: invalid literal" },
  { '"abc', "1:1: unterminated string" },
  { '"a\nb"', "1:3: control character in string" },
  { '"\\x"', "1:2: invalid escape" },
  { '"\\u12"', "truncated \\u escape" },
  { '"\\u12x4"', "1:4: invalid \\u escape" },
  { '"\\ud800"', "lone high surrogate" },
  { '"\\ud800\\u0041"', "lone high surrogate" },
  { '"\\udc00"', "lone low surrogate" },
  { '"\255"', "1:2: invalid UTF-8 in string" },
  { '"\237\160\128"', "invalid UTF-8 in string" },
  { "[1]]", "1:4: unexpected data after the value" },
  { "{\n  \"a\": [1,\n  ]\n}", "3:3: unexpected character" },
}
for _, c in ipairs(bad) do
  test("reject " .. string.format("%q", c[1]), function() fails(c[2], json.decode(c[1])) end)
end

test("depth: 64 levels decode, 65 do not; a bomb is a clean error", function()
  assert(json.decode(string.rep("[", 64) .. string.rep("]", 64)))
  fails("nesting too deep", json.decode(string.rep("[", 65) .. string.rep("]", 65)))
  fails("1:65: nesting too deep", json.decode(string.rep("[", 1000000)))
  fails("nesting too deep", json.decode(string.rep('{"a":', 100) .. "1" .. string.rep("}", 100)))
end)

test("encode compact, sorted keys", function()
  eq(json.encode(O { b = 1, a = A { true, false, null }, c = "x" }), '{"a":[true,false,null],"b":1,"c":"x"}')
  eq(json.encode({ 1, 2, 3 }), "[1,2,3]")
  eq(json.encode({}), "{}")
  eq(json.encode(A {}), "[]")
  eq(json.encode({ [1] = "a", [3] = "c" }), '{"1":"a","3":"c"}')
  eq(json.encode({ [10] = 1, [2] = 2, x = 3 }), '{"2":2,"10":1,"x":3}')
  eq(json.encode({ [1.5] = true }), '{"1.5":true}')
end)
test("encode numbers", function()
  eq(json.encode(0.1), "0.1")
  eq(json.encode(-0.0), "0")
  eq(json.encode(2 ^ 53), "9007199254740992")
  eq(json.encode(1e300), "1e+300")
  eq(json.encode(-1.5e-7), "-1.5e-07")
  eq(json.encode(9223372036854775807LL), "9223372036854775807")
  eq(json.encode(18446744073709551615ULL), "18446744073709551615")
  eq(json.encode(-9223372036854775807LL - 1), "-9223372036854775808")
  fails("NaN or infinity", json.encode(0 / 0))
  fails("NaN or infinity", json.encode({ x = math.huge }))
end)
test("encode strings", function()
  eq(json.encode("a\"b\\c\n\r\t\b\f\1/\195\169"), '"a\\"b\\\\c\\n\\r\\t\\b\\f\\u0001/\195\169"')
  fails("invalid UTF-8 in string", json.encode("\255"))
  fails("invalid UTF-8 in string", json.encode({ ["\255"] = 1 }))
end)
test("encode pretty", function()
  eq(json.encode(O { a = A { 1, 2 }, b = O {}, c = A {} }, { indent = 2 }),
    '{\n  "a": [\n    1,\n    2\n  ],\n  "b": {},\n  "c": []\n}')
  eq(json.encode(A { 1 }, { indent = 0 }), "[\n1\n]")
  errors(function() json.encode({}, { indent = -1 }) end, "json.encode: indent must be an integer")
  errors(function() json.encode({}, 4) end, "json.encode: options table expected, got number")
end)
test("encode errors", function()
  local t = {}
  t[1] = t
  fails("cycle", json.encode(t))
  fails("cannot encode a function", json.encode(print))
  fails("unsupported object key type boolean", json.encode({ [false] = 1 }))
  local deep = A {}
  local cur = deep
  for _ = 1, 64 do cur[1] = A {}; cur = cur[1] end
  fails("nesting too deep", json.encode(deep))
end)
test("round trips keep types", function()
  local src = '{"big":9223372036854775807,"f":0.5,"list":[1,"two",null,{}],"s":"\\u00e9"}'
  local v = assert(json.decode(src))
  eq(json.encode(v), '{"big":9223372036854775807,"f":0.5,"list":[1,"two",null,{}],"s":"\195\169"}')
  eq(json.decode(json.encode(v)), v)
end)
test("misuse raises", function()
  errors(function() json.decode() end, "json.decode: string expected, got no value")
  errors(function() json.decode({}) end, "json.decode: string expected, got table")
end)
