-- The bundled echo service (LAppS RAW protocol): sends every message back as it came.
echo = {}

echo.onStart = function() end

echo.onMessage = function(handler, opcode, message)
  local ok, err = ws:send(handler, opcode, message)
  if not ok then
    print("echo: " .. tostring(err))
  end
  return ok
end

echo.onDisconnect = function(_handler) end

echo.onShutdown = function() end

return echo
