-- Tries to reach connections by handler number (test/lua/isolation.test.ts):
--   handle               -> this connection's handler
--   probe <h> <h> ...    -> for each h: ws:send, bcast:subscribe, bcast:unsubscribe,
--                           ws:close, each as "ok:err", joined by "," (handlers by ";");
--                           then a broadcast on the channel a subscription would have joined
--   send <h> <text>      -> ws:send(h, 1, text) as "ok:err"
--   standalone <h>       -> hands h to the standalone sprober, which tries to subscribe it
local prober = {}
local handles, results

local function result(ok, err)
  return tostring(ok) .. ":" .. tostring(err)
end

function prober.onStart()
  bcast:create(77)
  handles = mqr.create("iso_handles")
  results = mqr.create("iso_results")
end

local function probe(target)
  return table.concat({
    result(ws:send(target, 1, "intruder")),
    result(bcast:subscribe(77, target)),
    result(bcast:unsubscribe(77, target)),
    result(ws:close(target, 4000, "intruder")),
  }, ",")
end

function prober.onMessage(h, _, message)
  if message == "handle" then return ws:send(h, 1, tostring(h)) end
  local send_to, text = message:match("^send (%d+) (.*)$")
  if send_to then return ws:send(h, 1, result(ws:send(tonumber(send_to), 1, text))) end
  local via = message:match("^standalone (%d+)$")
  if via then
    handles:post(tonumber(via))
    return ws:send(h, 1, tostring(results:recv()))
  end
  if message:sub(1, 6) == "probe " then
    local out = {}
    for target in message:sub(7):gmatch("%d+") do out[#out + 1] = probe(tonumber(target)) end
    bcast:send(77, "leak", 1)
    return ws:send(h, 1, table.concat(out, ";"))
  end
  return ws:send(h, 1, "?")
end

function prober.onDisconnect() end
function prober.onShutdown() end
return prober
