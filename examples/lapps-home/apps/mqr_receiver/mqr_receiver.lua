-- mqr_receiver: standalone instances sharing the queue "example", each counting what it receives
mqr_receiver = {}

local q = mqr.create("example")

mqr_receiver.init = function()
end

mqr_receiver.run = function()
  local received = 0
  local last = time.now()
  while not must_stop() do
    local obj = q:recv()
    if obj then
      received = received + 1
    end
    if time.now() - last >= 1000 then
      last = time.now()
      print(instance_id .. " received " .. received)
    end
  end
  print(instance_id .. " stopped after receiving " .. received)
end

return mqr_receiver
