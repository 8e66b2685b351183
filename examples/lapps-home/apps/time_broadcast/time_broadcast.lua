-- time_broadcast: a standalone service pushing the time every second as an OON on channel 1000
time_broadcast = {}

time_broadcast.init = function()
  bcast:create(1000)
end

time_broadcast.run = function()
  local n = nap:new()
  local oon = nljson.decode([[{"cid": 1000, "message": [0]}]])
  while not must_stop() do
    n:usleep(1000000)
    oon.message[1] = time.now()
    bcast:send(1000, oon)
  end
  print("time_broadcast: stopped")
end

return time_broadcast
