-- A service file whose top level never returns (test/lua/hostile.test.ts): loading it must
-- fail at handler_timeout_ms, not hang the start.
local n = 0
while true do
  n = n + 1
end
