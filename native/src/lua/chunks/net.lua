-- lapps.websocket, lapps.tcp and lapps.http: the coroutine-style API over the raw calls of
-- lua/api-websocket.cc, lua/api-tcp.cc and lua/api-http.cc (registered by lua/api-net.cc).
local lapps, ws_meta, tcp_meta, _, raw = ...
local type, error, pairs, tostring = type, error, pairs, tostring
local monotonic = lapps.monotonic

local function remaining(deadline)
  if not deadline then return nil end
  local left = deadline - monotonic()
  return left > 0 and left or 0
end

-- Waits on obj until ready(obj) says it is done; nil, "timeout" after `timeout` seconds.
local function await(wait, timed_out, obj, timeout, ready)
  local deadline = timeout and (monotonic() + timeout)
  while true do
    local done, a, b = ready(obj)
    if done then return a, b end
    local woke = wait(obj, remaining(deadline) or -1)
    if woke == false then return nil, "instance stopping" end
    if timed_out(obj) then return nil, "timeout" end
  end
end

-- connect(obj, err, options) for one kind of socket: obj, nil, err being what
-- raw.<kind>_open answered, waits for obj to open (options.timeout seconds, default 10) and
-- closes it when it does not.
local function connector(kind)
  local state, wait, timed_out, close =
    raw[kind .. "_state"], raw[kind .. "_wait"], raw[kind .. "_timed_out"], raw[kind .. "_close"]
  local function opened(obj)
    local st, text = state(obj)
    if st == "open" then return true, obj end
    if st == "closed" then return true, nil, text end
    return false
  end
  return function(obj, err, options)
    if not obj then return nil, err end
    local ok, e = await(wait, timed_out, obj, options and options.timeout or 10, opened)
    if not ok then
      close(obj)
      return nil, e
    end
    return obj
  end
end

-- lapps.websocket -----------------------------------------------------------------------
local WS = {}
ws_meta.__index = WS

local ws_connect = connector("ws")

local websocket = {}
function websocket.connect(url, options)
  if type(url) ~= "string" then error("lapps.websocket.connect: url must be a string", 2) end
  if options ~= nil and type(options) ~= "table" then
    error("lapps.websocket.connect: options must be a table", 2)
  end
  local obj, err = raw.ws_open(url, options)
  return ws_connect(obj, err, options)
end

function WS:send_text(text)
  if type(text) ~= "string" then error("websocket:send_text: string expected", 2) end
  return raw.ws_send(self, 1, text)
end
function WS:send_binary(data)
  if type(data) ~= "string" then error("websocket:send_binary: string expected", 2) end
  return raw.ws_send(self, 2, data)
end

local function ws_message(obj)
  local msg, op = raw.ws_take(obj)
  if msg then return true, msg, op end
  local state, text = raw.ws_state(obj)
  if state == "closed" then return true, nil, text end
  return false
end
-- receive([timeout]) -> message, opcode (1 text, 2 binary) | nil, err
function WS:receive(timeout)
  return await(raw.ws_wait, raw.ws_timed_out, self, timeout, ws_message)
end
function WS:close(code, reason)
  raw.ws_close(self, code or 1000, reason or "")
  return true
end
function WS:state()
  return (raw.ws_state(self))
end
lapps.websocket = websocket

-- lapps.tcp -----------------------------------------------------------------------------
local TCP = {}
tcp_meta.__index = TCP

local tcp_connect = connector("tcp")

local tcp = {}
function tcp.connect(host, port, options)
  if type(host) ~= "string" then error("lapps.tcp.connect: host must be a string", 2) end
  local obj, err = raw.tcp_open(host, port, options)
  return tcp_connect(obj, err, options)
end

function TCP:send(data)
  if type(data) ~= "string" then error("tcp:send: string expected", 2) end
  return raw.tcp_send(self, data)
end
-- receive([max[, timeout]]) -> bytes (at least one, at most max) | nil, err
function TCP:receive(max, timeout)
  return await(raw.tcp_wait, raw.tcp_timed_out, self, timeout, function(obj)
    local data = raw.tcp_take(obj, max)
    if data then return true, data end
    local state, text = raw.tcp_state(obj)
    if state == "closed" then return true, nil, text end
    return false
  end)
end
function TCP:close()
  raw.tcp_close(self)
  return true
end
lapps.tcp = tcp

-- lapps.http -----------------------------------------------------------------------------
-- Header fields lapps.http writes itself: a caller's value would misframe the request.
local framing = { ["content-length"] = true, ["transfer-encoding"] = true }

local function http_done(obj)
  local st, text = raw.http_state(obj)
  if st == "open" then return true, true end
  if st == "closed" then return true, nil, text end
  return false
end

local http = {}
-- request{method, url, headers, body, timeout, max_body, verify, ca}
--   -> status, headers, body | nil, err
function http.request(req)
  if type(req) ~= "table" then error("lapps.http.request: table expected", 2) end
  local url, body, timeout, max_body = req.url, req.body, req.timeout, req.max_body
  if type(url) ~= "string" then error("lapps.http.request: url must be a string", 2) end
  if body ~= nil and type(body) ~= "string" then
    error("lapps.http.request: body must be a string", 2)
  end
  local method = req.method or (body and "POST" or "GET")
  if type(method) ~= "string" or not method:find("^[%w!#$%%&'*+.^_`|~-]+$") then
    error("lapps.http.request: method must be an HTTP token", 2)
  end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0) then
    error("lapps.http.request: timeout must be a positive number of seconds", 2)
  end
  if max_body ~= nil and (type(max_body) ~= "number" or max_body < 0) then
    error("lapps.http.request: max_body must be a number of bytes", 2)
  end
  local flat = {}
  if req.headers ~= nil then
    if type(req.headers) ~= "table" then
      error("lapps.http.request: headers must be a table", 2)
    end
    for name, value in pairs(req.headers) do
      if type(name) ~= "string" or not name:find("^[%w!#$%%&'*+.^_`|~-]+$") then
        error("lapps.http.request: bad header name " .. tostring(name), 2)
      end
      if framing[name:lower()] then
        error("lapps.http.request: " .. name .. " is set by lapps.http", 2)
      end
      if type(value) == "number" then value = tostring(value) end
      if type(value) ~= "string" or value:find("[%z\r\n]") then
        error("lapps.http.request: header " .. name .. " must be a string without CR, LF or NUL", 2)
      end
      flat[#flat + 1] = name
      flat[#flat + 1] = value
    end
  end
  local obj, err = raw.http_open(url, method, flat, body, max_body, req)
  if not obj then return nil, err end
  local ok, e = await(raw.http_wait, raw.http_timed_out, obj, timeout or 10, http_done)
  if not ok then
    raw.http_close(obj)
    return nil, e
  end
  return raw.http_result(obj)
end
-- Connections in this instance's keep-alive pool.
function http.idle()
  return raw.http_idle()
end
lapps.http = http
