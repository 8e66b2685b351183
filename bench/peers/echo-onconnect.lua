-- The bundled echo with the trivial onConnect the handshake benchmark compares with the
-- echo without one (issue 12): it reads one header and accepts.
local echo = {}

function echo.onStart() end

function echo.onConnect(_, request)
  return request.headers["sec-websocket-version"] == "13"
end

function echo.onMessage(handler, opcode, message)
  return ws:send(handler, opcode, message)
end

function echo.onDisconnect() end

function echo.onShutdown() end

return echo
