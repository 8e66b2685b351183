-- broadcast_blob: a standalone service broadcasting an 8 KiB binary blob every second on channel 1001
broadcast_blob = {}

broadcast_blob.init = function()
  bcast:create(1001)
end

broadcast_blob.run = function()
  local n = nap:new()
  local blob = string.rep("\0\1\2\3\4\5\6\7", 1024)
  while not must_stop() do
    n:usleep(1000000)
    bcast:send(1001, blob)
  end
  print("broadcast_blob: stopped")
end

return broadcast_blob
