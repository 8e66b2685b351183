-- The standalone publisher of the lapps fan-out peers (fanout.lua, fanout-lapps.lua): it
-- waits on the "fanout-control" mqr queue and publishes on broadcast channel 1 from its
-- own thread. {"go", n, size, kind} publishes n messages back to back; {"rate", r, size,
-- kind} publishes r per second (lapps.sleep between them, so about 1 ms resolution) until
-- {"stop"} arrives. A message is its sequence number and CLOCK_MONOTONIC ns (time.monotonic)
-- then filler to <size> bytes: kind "raw" packs them as two little-endian u64 in a binary
-- frame, kind "lapps" sends the OON {cid = 1, message = [seq, ns, filler]}.
fanout_publisher = {}

local CHANNEL = 1
local control
local seq = 0

local function u64le(n) -- n < 2^53: exact as a Lua number
  local b = {}
  for i = 1, 8 do
    b[i] = n % 256
    n = math.floor(n / 256)
  end
  return string.char(unpack(b))
end

local function publish(size, kind)
  seq = seq + 1
  local ns = math.floor(time.monotonic() * 1e6)
  if kind == "lapps" then
    return bcast:send(CHANNEL, { cid = CHANNEL, message = { seq, ns, string.rep("x", size - 16) } })
  end
  return bcast:send(CHANNEL, u64le(seq) .. u64le(ns) .. string.rep("x", size - 16))
end

local function paced(rate, size, kind)
  local start = time.monotonic()
  local n = 0
  while not must_stop() do
    local cmd = control:try_recv()
    if cmd and cmd[1] == "stop" then return end
    n = n + 1
    local due = start + n * 1000 / rate
    local wait = due - time.monotonic()
    if wait > 0 then lapps.sleep(wait / 1000) end
    publish(size, kind)
  end
end

fanout_publisher.init = function()
  bcast:create(CHANNEL)
  control = mqr.create("fanout-control")
end

fanout_publisher.run = function()
  while not must_stop() do
    local cmd = control:recv()
    if cmd == nil then return end -- stopping
    local name, n, size, kind = cmd[1], cmd[2], cmd[3], cmd[4]
    if name == "go" and n and size and size >= 16 then
      for _ = 1, n do
        publish(size, kind)
      end
    elseif name == "rate" and n and n > 0 and size and size >= 16 then
      paced(n, size, kind)
    end
  end
end

return fanout_publisher
