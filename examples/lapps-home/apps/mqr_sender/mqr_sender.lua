-- mqr_sender: a standalone service posting to the message queue "example" in a tight loop
mqr_sender = {}

local q = mqr.create("example")

mqr_sender.init = function()
end

mqr_sender.run = function()
  local obj = nljson.decode([[{"counter": 0}]])
  while not must_stop() do
    obj.counter = obj.counter + 1
    q:post(obj)
  end
  print(instance_id .. " stopped after posting " .. obj.counter)
end

return mqr_sender
