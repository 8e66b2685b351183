-- Graceful stop: every message is answered after 50 ms (lapps.sleep), so a burst keeps
-- the connection's handler suspended with later messages waiting behind it; "stuck"
-- suspends for an hour; "busy" keeps the worker busy for 300 ms without waiting. Driven
-- by test/lua/stop.test.ts and test/e2e/cli-stop.test.ts.
drain = {}

drain.onStart = function() end

drain.onMessage = function(h, opcode, message)
  if message == "stuck" then
    lapps.sleep(3600)
  elseif message == "busy" then
    local t0 = lapps.monotonic()
    while lapps.monotonic() - t0 < 0.3 do end
  else
    lapps.sleep(0.05)
  end
  ws:send(h, opcode, message)
  return true
end

drain.onDisconnect = function() end

drain.onShutdown = function()
  print("drain: onShutdown")
end

return drain
