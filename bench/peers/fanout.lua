-- lapps fan-out peer (RAW protocol), see README.md "Fan-out peers". One broadcast channel:
--   text "sub"             subscribes the connection, answered with text "ok"
--   binary message         broadcast to every subscriber as it came (bcast:send: one
--                          frame, encoded once, shared by every subscriber's queue)
--   text "go <n> <size>"   the standalone publisher (fanout-publisher.lua) publishes n
--                          messages; "rate <r> <size>": r per second until this
--                          connection closes. Both travel to it through an mqr queue.
fanout = {}

local CHANNEL = 1
local control = mqr.create("fanout-control")
local pacer -- the connection whose "rate" the publisher follows

fanout.onStart = function()
  bcast:create(CHANNEL)
end

fanout.onMessage = function(handler, opcode, message)
  if opcode == 2 then
    return bcast:send(CHANNEL, message)
  end
  if message == "sub" then
    local ok, err = bcast:subscribe(CHANNEL, handler)
    if not ok then
      print("fanout: " .. tostring(err))
      return false
    end
    return ws:send(handler, 1, "ok")
  end
  local name, a, b = message:match("^(%a+) (%d+) (%d+)$")
  if name == "go" or name == "rate" then
    if name == "rate" then
      pacer = handler
    end
    return control:post({ name, tonumber(a), tonumber(b), "raw" })
  end
  return true
end

fanout.onDisconnect = function(handler)
  if handler == pacer then
    pacer = nil
    control:post({ "stop" })
  end
end

fanout.onShutdown = function() end

return fanout
