-- cws_bench: a standalone service driving 100 outbound WebSocket clients against /echo
cws_bench = {}

local url = "ws://127.0.0.1:5083/echo"
local message = string.rep("x", 128)
local received = 0

local callbacks = {
  onopen = function(h)
    cws:send(h, message, 2)
  end,
  onmessage = function(h, msg, opcode) -- luacheck: no unused args
    received = received + 1
    cws:send(h, msg, 2)
  end,
  onerror = function(h, err)
    print("cws_bench: socket " .. h .. ": " .. tostring(err)) -- handlers are numbers, as in LAppS
  end,
  onclose = function(h) -- luacheck: no unused args
  end,
}

cws_bench.init = function()
end

cws_bench.run = function()
  for i = 1, 100 do
    cws:new(url, callbacks)
    if i % 10 == 0 then
      cws:eventLoop()
    end
  end
  local last = time.now()
  while not must_stop() do
    cws:eventLoop()
    local now = time.now()
    if now - last >= 1000 then
      print(instance_id .. ": " .. math.floor(received * 1000 / (now - last)) .. " messages/s")
      received = 0
      last = now
    end
  end
  print(instance_id .. " stopped")
end

return cws_bench
