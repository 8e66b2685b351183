-- The mqr queue methods: loops around the raw calls, so a woken waiter simply tries again.
local methods, raw_post, raw_recv, size, name = ...
function methods.post(q, obj)
  while true do
    local st, err = raw_post(q, obj)
    if st == 1 then return true end
    if st == nil then return false, err or "mqr: stopped" end
  end
end
function methods.recv(q)
  while true do
    local st, v = raw_recv(q, true)
    if st == 1 then return v end
    if st == nil then return nil end
  end
end
function methods.try_recv(q)
  local st, v = raw_recv(q, false)
  if st == 1 then return v end
  return nil
end
methods.size = size
methods.name = name
