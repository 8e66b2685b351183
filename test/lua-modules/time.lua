-- The time module: time.now() (whole ms since the epoch, as in LAppS), time.unix()
-- (seconds with the fraction) and time.monotonic() (ms with sub-ms precision).

test("now is whole milliseconds since the epoch, near os.time()", function()
  local ms = time.now()
  eq(type(ms), "number")
  eq(ms, math.floor(ms), "whole milliseconds")
  -- os.time() is whole seconds; allow one second of truncation plus scheduling slack.
  local drift = ms / 1000 - os.time()
  if drift < -2 or drift > 2 then error("time.now() is " .. drift .. " s away from os.time()") end
  if ms < 1.6e12 then error("time.now() looks like seconds, not milliseconds: " .. ms) end
end)

test("unix is seconds with a fraction and agrees with now", function()
  local before = time.now()
  local s = time.unix()
  local after = time.now()
  eq(type(s), "number")
  if s * 1000 < before - 1 or s * 1000 > after + 1 then
    error(string.format("time.unix() %.6f is outside [%d, %d] ms", s, before, after))
  end
  local fractional = false
  for _ = 1, 1000 do
    if time.unix() % 1 ~= 0 then fractional = true break end
  end
  eq(fractional, true, "time.unix() has a fractional part")
end)

test("monotonic never goes back, has sub-millisecond precision and tracks real time", function()
  local prev, fractional = time.monotonic(), false
  for _ = 1, 10000 do
    local t = time.monotonic()
    if t < prev then error("time.monotonic() went back: " .. prev .. " -> " .. t) end
    if t % 1 ~= 0 then fractional = true end
    prev = t
  end
  eq(fractional, true, "time.monotonic() has a fractional part")
  -- Spin for 20 ms of monotonic time; the wall clock must move about as much.
  local m0, w0 = time.monotonic(), time.now()
  while time.monotonic() - m0 < 20 do end
  local elapsed = time.now() - w0
  if elapsed < 18 or elapsed > 2000 then error("20 ms monotonic took " .. elapsed .. " ms of now()") end
end)

test("colon calls and extra arguments are ignored", function()
  local a = time:now()
  local b = time.now("ignored", 1)
  if b < a then error("time.now() went back") end
  eq(type(time:monotonic()), "number")
  eq(type(time:unix()), "number")
end)
