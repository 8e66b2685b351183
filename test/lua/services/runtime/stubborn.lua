-- A standalone service that ignores must_stop(): the watchdog must end it at shutdown.
stubborn = {}
stubborn.init = function() end
stubborn.run = function()
  local x = 0
  while true do x = x + 1 end
end
return stubborn
