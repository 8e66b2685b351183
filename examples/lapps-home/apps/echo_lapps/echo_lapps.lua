-- The LAppS protocol echo: every request is answered with its params; the "subscribe"
-- request also puts the client on time_broadcast's channel 1000.
echo_lapps = {}

echo_lapps.onStart = function() end

echo_lapps.onMessage = function(handler, msg_type, message)
  if msg_type == 3 or msg_type == 4 then
    if message.method == "subscribe" then
      bcast:subscribe(1000, handler)
    end
    local response = nljson.decode([[{"cid": 0, "status": 1, "result": []}]])
    if msg_type == 4 then
      response.result = message.params
    end
    local ok, err = ws:send(handler, response)
    if not ok then
      print("echo_lapps: " .. tostring(err))
    end
    return ok
  end
  return true
end

echo_lapps.onDisconnect = function(_handler) end

echo_lapps.onShutdown = function() end

return echo_lapps
