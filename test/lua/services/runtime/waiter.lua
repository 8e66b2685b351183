-- Exercises the coroutine runtime and the safety limits; driven by test/lua/runtime.test.ts.
local waiter = {}
local handled = 0 -- messages handled by this Lua state (a fresh state starts at 0)
local queue

local function send(h, text)
  return ws:send(h, 1, text)
end

-- Integers stay integers across the queue.
local function kind(n) return (type(n) == "number" and n == math.floor(n)) and "integer" or type(n) end

local commands = {}

commands.sleep = function(h, arg)
  lapps.sleep(tonumber(arg))
  send(h, "slept " .. arg)
end
commands.spawn = function(h)
  lapps.spawn(function(who)
    lapps.sleep(0.05)
    send(who, "spawned")
  end, h)
  send(h, "spawning")
end
commands.timer = function(h)
  lapps.timer(0.05, function() send(h, "timer fired") end)
end
commands.cancel = function(h)
  local t = lapps.timer(0.05, function() send(h, "cancelled timer fired") end)
  local first = t:cancel()
  local second = t:cancel()
  lapps.timer(0.1, function() send(h, "cancel " .. tostring(first) .. " " .. tostring(second)) end)
end
commands.every = function(h)
  local n, t = 0, nil
  t = lapps.every(0.02, function()
    n = n + 1
    send(h, "tick " .. n)
    if n == 3 then t:cancel() end
  end)
end
commands.yield = function() coroutine.yield() end
commands.ownco = function() coroutine.wrap(function() lapps.sleep(0.01) end)() end
commands.badyield = function(h)
  -- A wait that cannot start (yield across a C call) is an error the service may catch; the
  -- abandoned wait must not wake the coroutine later.
  local ok = pcall(table.sort, { 3, 2, 1 }, function(a, b)
    lapps.sleep(0.01)
    return a < b
  end)
  local t0 = lapps.monotonic()
  lapps.sleep(0.3)
  send(h, tostring(ok) .. " " .. tostring(lapps.monotonic() - t0 >= 0.29))
end
commands.handled = function(h) send(h, tostring(handled)) end
commands.hog = function()
  local t = {}
  while true do t[#t + 1] = string.rep("x", 65536) .. #t end
end
-- Garbage that compiled traces keep alive until they are flushed: the closures and
-- coroutines of a deep coroutine.wrap chain.
commands.wraphog = function()
  local function f() return coroutine.wrap(f)() end
  f()
end
-- Memory the service keeps: the state stays full after the error.
local kept = {}
commands.keep = function()
  while true do kept[#kept + 1] = string.rep("k", 65536) .. #kept end
end
commands.spin = function() while true do end end
commands.count = function()
  local x = 0
  while true do x = x + 1 end
end
commands.boom = function() error("boom") end
-- An error of the instance's own: in a timer, not in a handler of the connection.
commands.timerboom = function(h)
  lapps.timer(0, function() error("timer boom") end)
  send(h, "armed")
end
commands.recv = function(h)
  local v = queue:recv()
  send(h, "got " .. v.text .. " " .. kind(v.n))
end
commands.post = function(h, arg)
  local ok, err = queue:post({ text = arg, n = 42 })
  send(h, ok and "posted" or ("post failed: " .. tostring(err)))
end
commands.qinfo = function(h)
  local small = mqr.create("small", 2)
  local a = small:post(1)
  local b = small:post(2)
  local c, err = small:post(3) -- full: suspends here until there is room
  send(h, table.concat({ small:name(), small:size(), tostring(a), tostring(b), tostring(c), tostring(err) }, " "))
end
commands.qdrain = function(h)
  local small = mqr.create("small")
  send(h, tostring(small:try_recv()))
end
commands.try = function(h)
  local v = queue:try_recv()
  send(h, v and v.text or "none")
end
commands.nap = function(h)
  local n = nap:new()
  n:usleep(20000)
  n:nsleep(1000)
  n:sleep(0.01)
  send(h, "napped")
end
commands.now = function(h)
  local a, m = lapps.now(), lapps.monotonic()
  send(h, (a > 1.7e9 and m > 0) and "clock ok" or "clock bad")
end


function waiter.onStart()
  queue = mqr.create("runtime-test")
end

function waiter.onMessage(h, _, message)
  handled = handled + 1
  local cmd, arg = message:match("^(%S+)%s*(.*)$")
  local fn = commands[cmd]
  if fn then
    fn(h, arg)
  else
    send(h, message)
  end
  return true
end

function waiter.onDisconnect() end
function waiter.onShutdown() end

return waiter
