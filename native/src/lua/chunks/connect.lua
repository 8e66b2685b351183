-- The coroutine every onConnect runs in (lua/connect.cc): the handler is called protected,
-- so an error refuses the handshake (500) instead of escaping, and whatever it returned, or
-- its error with a traceback, goes to `answer` (C), which answers the handshake. It may
-- wait (lapps.sleep, sockets, lapps.http, mqr): LuaJIT yields across xpcall.
local answer, traceback = ...
local xpcall = xpcall
return function(onConnect, handler, request)
  return answer(handler, xpcall(onConnect, traceback, handler, request))
end
