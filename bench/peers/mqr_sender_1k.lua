-- mqr_sender with 1 KiB payloads (bench/mqr.mjs, scenario mqr-1k): LAppS's example sender
-- posting an nljson object that also carries a 1 KiB string.
mqr_sender = {}

local q = mqr.create("example")

mqr_sender.init = function()
end

mqr_sender.run = function()
  local obj = nljson.decode([[{"counter": 0}]])
  obj.payload = string.rep("x", 1024)
  while not must_stop() do
    obj.counter = obj.counter + 1
    q:post(obj)
  end
  print(instance_id .. " stopped after posting " .. obj.counter)
end

return mqr_sender
