-- onConnect under test: the query's `mode` says what it does. Every accepted connection can
-- ask for the request its onConnect saw ("request") and for ws:info ("info"); anything
-- else is echoed.
local requests = {}
local seen = 0

local function accept_after(request, seconds)
  lapps.sleep(seconds)
  return true, "slept " .. request.args.ms
end

local modes = {
  accept = function() return true end,
  nothing = function() end,
  user = function(request) return true, request.args.user end,
  number = function() return true, 42.5 end,
  refuse = function(request)
    return false, tonumber(request.args.status), request.args.reason
  end,
  default = function() return false end,
  error = function() error("boom in onConnect") end,
  badstatus = function() return false, 200, "no" end,
  badreturn = function() return "yes" end,
  baduser = function() return true, {} end,
  hugeuser = function() return true, string.rep("u", 5000) end,
  sleep = function(request) return accept_after(request, tonumber(request.args.ms) / 1000) end,
  sleeprefuse = function(request)
    lapps.sleep(tonumber(request.args.ms) / 1000)
    return false, 401, "token expired"
  end,
  sleeperror = function()
    lapps.sleep(0.05)
    error("late boom")
  end,
  loop = function() while true do end end,
  header = function(request) return request.headers["x-token"] == "open sesame" end,
}

local connect = {}

function connect.onStart() end

function connect.onConnect(handler, request)
  seen = seen + 1
  requests[handler] = request
  local mode = modes[request.args.mode or "accept"]
  if not mode then return false, 400, "unknown mode" end
  return mode(request)
end

function connect.onMessage(handler, opcode, message)
  if message == "request" then
    -- args and cookies are made on first read, and header fields are looked up by name:
    -- read what the tests check, then encode it all.
    local request = requests[handler]
    local h = request.headers
    for _, name in ipairs({ "x-multi", "host", "upgrade", "no-such-header" }) do
      assert(h[name] == nil or type(h[name]) == "string")
    end
    assert(type(request.args) == "table" and type(request.cookies) == "table")
    ws:send(handler, 1, lapps.json.encode(request))
  elseif message == "info" then
    local info, err = ws:info(handler)
    ws:send(handler, 1, lapps.json.encode(info or { err = err }))
  elseif message:sub(1, 5) == "info " then
    local info, err = ws:info(tonumber(message:sub(6)))
    ws:send(handler, 1, lapps.json.encode(info or { err = err }))
  elseif message == "seen" then
    ws:send(handler, 1, tostring(seen))
  elseif message == "handler" then
    ws:send(handler, 1, tostring(handler))
  else
    ws:send(handler, opcode, message)
  end
  return true
end

function connect.onDisconnect(handler)
  requests[handler] = nil
end

function connect.onShutdown() end

return connect
