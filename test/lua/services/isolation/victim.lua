-- The service whose connections another service tries to reach (test/lua/isolation.test.ts):
-- echoes, and tells a client its own handler.
local victim = {}

function victim.onStart() end

function victim.onMessage(h, opcode, message)
  if message == "handle" then return ws:send(h, 1, tostring(h)) end
  return ws:send(h, opcode, message)
end

function victim.onDisconnect() end
function victim.onShutdown() end
return victim
