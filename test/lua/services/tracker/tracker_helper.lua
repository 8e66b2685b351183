-- A helper module next to the service: loads with require from the service directory.
local M = {}

function M.greeting()
  return "hello from a helper module"
end

return M
