-- A LAppS protocol service that signs clients in at connect time: the token in the query
-- must be "let-me-in"; the nickname becomes the connection's user value.
local connect_lapps = {}

function connect_lapps.onStart() end

function connect_lapps.onConnect(_, request)
  if request.args.token ~= "let-me-in" then return false, 401, "token required" end
  return true, request.args.nick or "anonymous"
end

function connect_lapps.onMessage(handler, msg_type, message)
  if msg_type == 3 and message.method == "whoami" then
    local info = ws:info(handler)
    return ws:send(handler, { cid = 0, status = 1, result = { info.user, info.path } })
  end
  return true
end

function connect_lapps.onDisconnect() end

function connect_lapps.onShutdown() end

return connect_lapps
