-- luacheck: globals mqrbound
-- mqr byte bounds, driven by test/lua/mqr-bounds.test.ts. Text commands:
-- "fill <queue> <count> <size>" (posts count strings of size bytes; waits while full),
-- "drain <queue>", "size <queue>", "big <queue> <size>", "start" (what onStart saw).
mqrbound = {}

local started -- result of filling a small queue in onStart, where nothing may wait

local function reply(handler, text)
  return ws:send(handler, 1, text)
end

mqrbound.onStart = function()
  -- 1000-byte items into a queue of 1000 items but 4096 bytes: the bytes bound first.
  local q = mqr.create("bounded-start", 1000, 4096)
  local item = string.rep("s", 1000)
  local n = 0
  while true do
    local ok, err = q:post(item)
    if not ok then
      started = n .. " " .. tostring(err)
      break
    end
    n = n + 1
  end
  -- Asking for more than limits.mqr_max_bytes gets the server's bound.
  mqr.create("clamped", 10, 1e12)
end

mqrbound.onMessage = function(handler, _opcode, message)
  local cmd, name, a, b = message:match("^(%S+)%s*(%S*)%s*(%d*)%s*(%d*)$")
  if cmd == "start" then
    return reply(handler, started)
  end
  local q = mqr.create(name, 100000)
  if cmd == "fill" then
    local item = string.rep("x", tonumber(b))
    local n = 0
    for _ = 1, tonumber(a) do
      local ok, err = q:post(item)
      if not ok then return reply(handler, "post failed after " .. n .. ": " .. tostring(err)) end
      n = n + 1
    end
    return reply(handler, "posted " .. n)
  elseif cmd == "drain" then
    local n = 0
    while q:try_recv() do n = n + 1 end
    return reply(handler, tostring(n))
  elseif cmd == "size" then
    return reply(handler, tostring(q:size()))
  elseif cmd == "big" then
    local ok, err = q:post(string.rep("b", tonumber(a)))
    return reply(handler, tostring(ok) .. " " .. tostring(err))
  end
  return reply(handler, "unknown command")
end

mqrbound.onDisconnect = function(_handler) end

mqrbound.onShutdown = function() end

return mqrbound
