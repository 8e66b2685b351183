-- A standalone producer posting in a tight loop, as LAppS's mqr_sender does: the bounded
-- queue makes it wait for the consumer instead of growing without limit.
pump = {}
local q
local seq = 0

pump.init = function()
  q = mqr.create("pump", 4)
end

pump.run = function()
  while not must_stop() do
    seq = seq + 1
    q:post({ seq = seq })
  end
end

return pump
