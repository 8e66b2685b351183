-- luacheck: globals hostile
-- luacheck: ignore 241 (tables filled only to take memory)
-- Every way we found to crash, freeze or bloat a Lua state, one attack per message, named by
-- the message; driven by test/lua/hostile.test.ts, which checks that the server stays up,
-- that a neighbour on the same worker keeps being served, that the offender gets a clear
-- answer, and that memory stays bounded. An attack that fails raises its error out of
-- onMessage (lapps logs it; see the test for what the client sees); one that cannot do
-- harm answers "survived <name>". Any other message is echoed.
hostile = {}

local function send(h, text)
  return ws:send(h, 1, text)
end

local attacks = {}

-- Issue 10, item 1: thousands of coroutines and timers until the memory limit, with loop
-- bounds the JIT compiles (the trace compiler ran out of memory while stitching around the
-- C call and left the coroutine's stack broken).
attacks.spawnbomb = function()
  for _ = 1, 2000000 do
    lapps.spawn(function() lapps.sleep(3600) end)
  end
end
attacks.everybomb = function()
  for _ = 1, 100000 do
    lapps.every(0, function() end)
  end
end

-- Issue 10, item 2: recursion through C functions.
attacks.gsub = function()
  local function f(s) return (s:gsub(".", f)) end
  return f("x")
end
attacks.wrap = function()
  local function f() return coroutine.wrap(f)() end
  return f()
end
attacks.resume = function()
  local function f()
    local co = coroutine.create(f)
    local ok, err = coroutine.resume(co)
    if not ok then error(err, 0) end
  end
  return f()
end
-- Coroutines created first, then resumed one inside the other: no allocation per level.
attacks.chain = function()
  local cos, n = {}, 200000
  for i = n, 1, -1 do
    local nxt = cos[i + 1]
    cos[i] = coroutine.create(function()
      if nxt then
        local ok, err = coroutine.resume(nxt)
        if not ok then error(err, 0) end
      end
    end)
  end
  local ok, err = coroutine.resume(cos[1])
  if not ok then error(err, 0) end
end
-- Both: a deep gsub chain inside every one of many nested coroutines.
attacks.gsubwrap = function()
  local depth = 0
  local function f(s)
    depth = depth + 1
    if depth % 1000 == 0 then
      return coroutine.wrap(function() return (s:gsub(".", f)) end)()
    end
    return (s:gsub(".", f))
  end
  return f("x")
end
attacks.tostring = function()
  local mt = {}
  mt.__tostring = function(o) return tostring(o) end
  return tostring(setmetatable({}, mt))
end
attacks.format = function()
  local mt = {}
  mt.__tostring = function(o) return string.format("%s", o) end
  return tostring(setmetatable({}, mt))
end
attacks.sort = function()
  local function cmp(a, b)
    table.sort({ 3, 2, 1 }, cmp)
    return a < b
  end
  table.sort({ 3, 2, 1 }, cmp)
end
attacks.loadreader = function()
  local function reader()
    load(reader)
    return nil
  end
  return load(reader)
end
attacks.pcallwrap = function()
  local function f(n)
    if n % 50 == 0 then
      return coroutine.wrap(function() return pcall(f, n + 1) end)()
    end
    return pcall(f, n + 1)
  end
  local ok, err = f(1)
  if not ok then error(err, 0) end
end

-- Nesting through lapps's own C code: codecs of cyclic and deep values.
attacks.codecs = function()
  local cyclic = {}
  cyclic[1] = cyclic
  local deep = {}
  local c = deep
  for _ = 1, 100000 do c[1] = {} c = c[1] end
  local results = {}
  for _, try in ipairs({
    function() return lapps.json.encode(cyclic) end,
    function() return lapps.json.encode(deep) end,
    function() return lapps.cbor.encode(deep) end,
    function() return lapps.json.decode(string.rep("[", 1000000)) end,
    function() return nljson.decode(string.rep("{\"a\":", 100000) .. "1" .. string.rep("}", 100000)) end,
  }) do
    local _, value, err = pcall(try)
    results[#results + 1] = type(value) == "string" and #value .. " bytes" or tostring(err or value)
  end
  error(table.concat(results, "; "))
end
attacks.spawnargs = function() lapps.spawn(print, unpack({}, 1, 200)) end

-- Plain recursion and metamethod loops (LuaJIT runs these without C recursion).
attacks.recurse = function()
  local function f(n) return f(n + 1) + 1 end
  return f(1)
end
attacks.index = function()
  local t = setmetatable({}, {})
  getmetatable(t).__index = function(_, k) return t[k] end
  return t.x
end
attacks.newindex = function()
  local t = setmetatable({}, {})
  getmetatable(t).__newindex = function(_, k, v) t[k] = v end
  t.x = 1
end
attacks.concat = function()
  local t = setmetatable({}, {})
  getmetatable(t).__concat = function() return t .. "x" end
  return t .. "y"
end
attacks.call = function()
  local t = setmetatable({}, {})
  getmetatable(t).__call = function(self) return self() end
  return t()
end

-- Memory.
attacks.rep = function() return #string.rep("x", 2 ^ 31) end
attacks.rep2 = function() return #string.rep("abc", 2 ^ 28, "def") end
attacks.concatgrow = function()
  local s = "x"
  while true do s = s .. s end
end
attacks.tablegrow = function()
  local t = {}
  for i = 1, 1e12 do t[i] = i end
end
attacks.hashgrow = function()
  local t = {}
  for i = 1, 1e12 do t["k" .. i] = true end
end
attacks.closures = function()
  local t = {}
  for i = 1, 1e12 do t[i] = function() return i end end
end
attacks.tableconcat = function()
  local t = {}
  for i = 1, 1e6 do t[i] = string.rep("y", 1000) end
  local s = table.concat(t)
  return #s .. table.concat({ s, s, s, s, s, s, s, s })
end
attacks.unpack = function() return select("#", unpack({}, 1, 1e8)) end
attacks.gcstop = function()
  collectgarbage("stop")
  local t = {}
  for i = 1, 1e12 do t[i] = { i } end
end
attacks.gcpause = function()
  collectgarbage("setpause", 100000)
  collectgarbage("setstepmul", 0)
  local t = {}
  for i = 1, 1e12 do t[i % 1000] = string.rep("z", 4096) .. i end
end
attacks.leak = function()
  -- Kept in a global: the state stays full after the error.
  hostile.kept = hostile.kept or {}
  local t = hostile.kept
  while true do t[#t + 1] = string.rep("k", 65536) .. #t end
end

-- Errors that fight back.
attacks.errtable = function()
  error(setmetatable({}, { __tostring = function() error("tostring of the error fails too") end }))
end
attacks.errloop = function()
  local mt = {}
  mt.__tostring = function(e) return tostring(e) end
  error(setmetatable({}, mt))
end
attacks.errhandler = function()
  local ok, err = xpcall(function() error("first") end, function() error("in the handler") end)
  error(tostring(ok) .. " " .. tostring(err))
end
attacks.errnil = function() error(nil) end
attacks.errnumber = function() error(42) end
attacks.errhuge = function() error(string.rep("E", 16 * 1024 * 1024)) end

-- Code.
attacks.loadhuge = function()
  local f, err = load(string.rep("local a = 1 ", 2000000))
  error(tostring(f) .. " " .. tostring(err))
end
attacks.loadnest = function()
  local f, err = load("return " .. string.rep("(", 100000) .. "1" .. string.rep(")", 100000))
  error(tostring(f) .. " " .. tostring(err))
end
attacks.loadconst = function()
  local parts = {}
  for i = 1, 300000 do parts[i] = "x" .. i .. " = " .. i end
  local f, err = load(table.concat(parts, "\n"))
  error(tostring(f) .. " " .. tostring(err))
end
attacks.formatwidth = function() return string.format("%99999999d", 1) end
attacks.formatmany = function()
  return #string.format(string.rep("%s", 100000), unpack({}, 1, 100000))
end

-- The runtime.
attacks.exit = function() os.exit(1) end
attacks.jitflush = function()
  for _ = 1, 1000 do
    for _ = 1, 100 do local _ = {} end
    jit.flush()
  end
  jit.off()
  jit.on()
  jit.opt.start("maxmcode=64", "maxtrace=10", "hotloop=1")
  local s = 0
  for i = 1, 1e6 do s = s + i % 7 end
  return s
end
attacks.strmeta = function()
  local mt = getmetatable("")
  mt.__index = function() error("string methods are gone") end
  return ("x"):upper()
end
attacks.yieldmeta = function()
  local t = setmetatable({}, { __index = function() coroutine.yield() end })
  return t.x
end
attacks.sleepmeta = function()
  local t = setmetatable({}, { __index = function(_, k) lapps.sleep(0.01) return k end })
  return t.x
end
attacks.yieldgsub = function()
  return (("x"):gsub(".", function() lapps.sleep(0.01) end))
end
attacks.gcfinalizer = function()
  for _ = 1, 1000 do
    local p = newproxy(true)
    getmetatable(p).__gc = function() error("error in __gc") end
  end
  collectgarbage()
end
attacks.gcspawn = function()
  for _ = 1, 1000 do
    local p = newproxy(true)
    getmetatable(p).__gc = function() error("error in __gc") end
  end
  for _ = 1, 1000 do lapps.spawn(function() end) end
end
attacks.gcloop = function()
  local p = newproxy(true)
  getmetatable(p).__gc = function() while true do end end
  p = nil -- luacheck: ignore 311
  collectgarbage()
end
-- A finalizer that loops, left for the collection a quiet worker runs (onIdle): the state
-- grows by 2 MB that it keeps, and the proxy is garbage nobody collects until then.
local kept -- luacheck: ignore 231
attacks.gcidle = function()
  kept = string.rep("k", 2 * 1024 * 1024)
  local p = newproxy(true)
  getmetatable(p).__gc = function() while true do end end
  p = nil -- luacheck: ignore 311
  return "left"
end

-- Not attacks: what the state looks like afterwards.
local queries = {}
queries.mem = function() return string.format("mem %.0f", collectgarbage("count")) end
-- An ordinary message that needs some memory (about 2 MB, freed when it is done).
queries.work = function()
  local parts = {}
  for i = 1, 1000 do parts[i] = string.rep("w", 1000) end
  return "worked " .. #table.concat(parts)
end

function hostile.onStart() end

function hostile.onMessage(h, _, message)
  local name = message:match("^(%S+)")
  if queries[name] then return send(h, queries[name]()) end
  local attack = attacks[name]
  if not attack then return send(h, message) end
  attack()
  return send(h, "survived " .. name)
end

function hostile.onDisconnect() end
function hostile.onShutdown() end

return hostile
