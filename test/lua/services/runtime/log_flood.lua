-- Prints 1 KB lines as fast as a timer allows (200 a millisecond) and echoes every message:
-- a service flooding the log while clients still expect answers.
local log_flood = {}
local line = string.rep("x", 1000)

function log_flood.onStart()
  lapps.every(0.001, function()
    for _ = 1, 200 do print(line) end
  end)
end

function log_flood.onMessage(h, opcode, message)
  ws:send(h, opcode, message)
  return true
end

function log_flood.onDisconnect() end
function log_flood.onShutdown() end

return log_flood
