-- A standalone receiver waiting on a queue nobody posts to (test/lua/mqr-batch.test.ts):
-- waiting must cost no CPU.
idler = {}

local q = mqr.create("idle")

idler.init = function() end

idler.run = function()
  while not must_stop() do
    local v = q:recv()
    if v then print(instance_id .. " got " .. tostring(v.n)) end
  end
end

return idler
