-- luacheck: globals mqrbatch
-- mqr receive batches, driven by test/lua/mqr-batch.test.ts. Text commands:
-- "fill <queue> <count>" (posts 1..count), "takeone <queue>" (recv one item through a handle
-- that is then dropped and collected), "drain <queue>" (every item, comma-separated),
-- "size <queue>".
mqrbatch = {}

mqrbatch.onStart = function() end

local function reply(handler, text)
  return ws:send(handler, 1, text)
end

mqrbatch.onMessage = function(handler, _opcode, message)
  local cmd, name, a = message:match("^(%S+)%s*(%S*)%s*(%d*)$")
  if cmd == "fill" then
    local q = mqr.create(name, 100000)
    for i = 1, tonumber(a) do q:post({ n = i }) end
    return reply(handler, "filled")
  elseif cmd == "takeone" then
    local h = mqr.create(name)
    local v = h:recv()
    local size = h:size() -- the items the handle's batch holds still count
    h = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    return reply(handler, v.n .. " " .. size)
  elseif cmd == "drain" then
    local q = mqr.create(name)
    local got = {}
    while true do
      local v = q:try_recv()
      if not v then break end
      got[#got + 1] = v.n
    end
    return reply(handler, table.concat(got, ","))
  elseif cmd == "size" then
    return reply(handler, tostring(mqr.create(name):size()))
  end
  return reply(handler, "unknown command")
end

mqrbatch.onDisconnect = function(_handler) end

mqrbatch.onShutdown = function() end

return mqrbatch
