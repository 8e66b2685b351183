-- lapps.timer and lapps.every on top of __after / __cancel; callbacks run in their own
-- coroutines, so they may suspend too.
local lapps, after, cancel = ...
local type, select, unpack = type, select, unpack
local function check(fn, delay, f)
  if type(delay) ~= "number" or delay ~= delay or delay < 0 then
    error(fn .. ": delay must be a non-negative number of seconds", 3)
  end
  if type(f) ~= "function" then error(fn .. ": callback must be a function", 3) end
end
local Timer = {}
Timer.__index = Timer
function Timer:cancel()
  if not self.active then return false end
  self.active = false
  return cancel(self.id, self.ref)
end
function lapps.timer(delay, f, ...)
  check("lapps.timer", delay, f)
  local n, args = select("#", ...), { ... }
  local t = setmetatable({ active = true }, Timer)
  t.id, t.ref = after(delay, function()
    t.active = false
    f(unpack(args, 1, n))
  end)
  return t
end
function lapps.every(interval, f, ...)
  check("lapps.every", interval, f)
  local n, args = select("#", ...), { ... }
  local t = setmetatable({ active = true }, Timer)
  local function tick()
    if not t.active then return end
    t.id, t.ref = after(interval, tick)
    f(unpack(args, 1, n))
  end
  t.id, t.ref = after(interval, tick)
  return t
end
