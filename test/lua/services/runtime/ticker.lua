-- A standalone service in LAppS style: broadcasts a counter on channel 70 every 50 ms.
ticker = {}
local count = 0

ticker.init = function()
  bcast:create(70)
  print("ticker init " .. instance_id .. " ws=" .. type(ws))
end

ticker.run = function()
  local n = nap:new()
  while not must_stop() do
    n:usleep(50000)
    count = count + 1
    bcast:send(70, { cid = 70, message = { count } })
  end
  print("ticker run returned after " .. count)
end

ticker.onShutdown = function()
  print("ticker shutdown")
end

return ticker
