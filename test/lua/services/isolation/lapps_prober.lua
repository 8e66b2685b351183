-- A LAppS protocol service that tries to reach connections by handler number with
-- ws:send(handler, object) (test/lua/isolation.test.ts): method "probe", params = handlers;
-- the result lists "ok:err" per handler.
local lapps_prober = {}

function lapps_prober.onStart() end

function lapps_prober.onMessage(h, msg_type, message)
  if msg_type ~= 4 or message.method ~= "probe" then return true end
  local results = {}
  for i = 1, #message.params do
    local target = tonumber(message.params[i])
    local ok, err = ws:send(target, { cid = 3, message = { "intruder" } })
    local ok2, err2 = ws:send(target, { cid = 0, status = 1, result = { "intruder" } })
    results[#results + 1] = tostring(ok) .. ":" .. tostring(err) .. "," .. tostring(ok2) .. ":" .. tostring(err2)
  end
  return ws:send(h, { cid = 0, status = 1, result = results })
end

function lapps_prober.onDisconnect() end
function lapps_prober.onShutdown() end
return lapps_prober
