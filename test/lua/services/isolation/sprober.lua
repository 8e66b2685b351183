-- A standalone service handed handlers through a queue (test/lua/isolation.test.ts): it
-- has no connections of its own, so subscribing a handler to a channel must fail.
sprober = {}
local handles, results

sprober.init = function()
  bcast:create(78)
  handles = mqr.create("iso_handles")
  results = mqr.create("iso_results")
end

sprober.run = function()
  while not must_stop() do
    local h = handles:recv()
    if h then
      local ok, err = bcast:subscribe(78, h)
      local ok2, err2 = bcast:unsubscribe(78, h)
      bcast:send(78, "leak", 1)
      results:post(tostring(ok) .. ":" .. tostring(err) .. "," .. tostring(ok2) .. ":" .. tostring(err2))
    end
  end
end

return sprober
