-- echo: a raw reactive service answering every message with ws:send(handler, opcode, message)
echo = {}

echo.onStart = function()
end

echo.onDisconnect = function(handler) -- luacheck: no unused args
end

echo.onShutdown = function()
end

echo.onMessage = function(handler, opcode, message)
  local result, errmsg = ws:send(handler, opcode, message)
  if not result then
    print("echo::onMessage(): " .. errmsg)
  end
  return result
end

return echo
