-- lapps fan-out peer over the LAppS protocol, see README.md "Fan-out peers". One
-- broadcast channel (cid 1); every message is CBOR:
--   request {method = "sub"}                    subscribes, answered {status = 1, result = [true]}
--   notification {method = "pub", params = P}   broadcast as the OON {cid = 1, message = P}
--                                               (bcast:send: CBOR-encoded once, one frame)
--   notification {method = "go", params = [n, size]} / {method = "rate", params = [r, size]}:
--                                               the standalone publisher, as in fanout.lua
fanout_lapps = {}

local CHANNEL = 1
local control = mqr.create("fanout-control")
local pacer

fanout_lapps.onStart = function()
  bcast:create(CHANNEL)
end

fanout_lapps.onMessage = function(handler, _msg_type, message)
  local method = message.method
  if method == "pub" then
    return bcast:send(CHANNEL, { cid = CHANNEL, message = message.params })
  end
  if method == "sub" then
    local ok, err = bcast:subscribe(CHANNEL, handler)
    if not ok then
      return ws:send(handler, { cid = 0, status = 0, error = { code = -32000, message = err } })
    end
    return ws:send(handler, { cid = 0, status = 1, result = { true } })
  end
  if method == "go" or method == "rate" then
    local params = message.params or {}
    if method == "rate" then
      pacer = handler
    end
    return control:post({ method, params[1], params[2], "lapps" })
  end
  return true
end

fanout_lapps.onDisconnect = function(handler)
  if handler == pacer then
    pacer = nil
    control:post({ "stop" })
  end
end

fanout_lapps.onShutdown = function() end

return fanout_lapps
