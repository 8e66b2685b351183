-- Subscribes its clients to the ticker's channel; also reads the queue the pump fills.
listener = {}
local queue

listener.onStart = function()
  queue = mqr.create("pump")
end

listener.onMessage = function(h, _, message)
  if message == "sub" then
    local ok, err = bcast:subscribe(70, h)
    ws:send(h, 1, ok and "subscribed" or err)
  elseif message == "drain" then
    local got = {}
    for _ = 1, 5 do
      local v = queue:recv()
      got[#got + 1] = tostring(v.seq)
    end
    ws:send(h, 1, table.concat(got, ","))
  end
  return true
end

listener.onDisconnect = function() end
listener.onShutdown = function() end
return listener
