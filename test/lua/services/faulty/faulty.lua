-- luacheck: globals faulty
-- A service with bugs on purpose: each message names the failure to produce.
faulty = {}

faulty.onStart = function() end

faulty.onMessage = function(handler, opcode, message)
  if message == "boom" then
    error("boom requested")
  elseif message == "false" then
    return false
  elseif message == "nilcall" then
    -- A call to a function that does not exist, as buggy LAppS services do.
    local helpers = {}
    helpers.missing(message)
  end
  return ws:send(handler, opcode, message)
end

faulty.onDisconnect = function(_handler) end

faulty.onShutdown = function() end

return faulty
