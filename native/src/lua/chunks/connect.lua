-- The coroutine onConnect runs in (lua/connect.cc), reused from handshake to handshake like
-- the message dispatcher: one resume per handshake, then it yields `done` for the next.
-- The handler is called protected, so an error refuses the handshake (500) instead of
-- escaping; whatever it returned, or its error with a traceback, goes to `answer` (C). It
-- may wait (lapps.sleep, sockets, lapps.http, mqr): LuaJIT yields across xpcall, and the
-- instance parks the coroutine with the wait and starts a new one for the next handshake.
--
-- The instance resumes it with a pointer to the request (valid during that resume only);
-- `unpack` (C) turns it into Lua values here, inside the resume, so that what they allocate
-- is collected as the service's own garbage, step by step. The scalar fields are set by a
-- table constructor; `headers` (whose fields are looked up by name), `args` and `cookies`
-- are made on first read by `build` (C, the requests' __index), from request.head and
-- request.query, and kept in the request: a handler that reads none of them pays nothing.
local answer, traceback, done, build, unpack = ...
local xpcall, yield, setmetatable = xpcall, coroutine.yield, setmetatable
local lazy = { __index = build }

return function(onConnect, handler, req)
  while true do
    local method, target, path, query, origin, subprotocol, ip, port, head, tls = unpack(req)
    local request = setmetatable({
      method = method,
      target = target,
      path = path,
      query = query,
      origin = origin,
      subprotocol = subprotocol,
      ip = ip,
      port = port,
      tls = tls,
      head = head,
    }, lazy)
    answer(handler, xpcall(onConnect, traceback, handler, request))
    onConnect, handler, req = yield(done)
  end
end
