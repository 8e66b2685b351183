-- Every message costs CPU time on the worker (a busy wait, not a sleep) before it is echoed:
-- 2 ms, or <n> ms for a message that starts with "<n>ms" (test/lua/fairness.test.ts).
local busy = {}
local monotonic = lapps.monotonic

function busy.onStart() end

function busy.onMessage(h, opcode, message)
  local ms = tonumber(message:match("^(%d+)ms")) or 2
  local stop = monotonic() + ms / 1000
  while monotonic() < stop do end
  return ws:send(h, opcode, message)
end

function busy.onDisconnect() end
function busy.onShutdown() end
return busy
