-- luacheck: globals tracker
-- Records the lifecycle of connections and exposes ws:send / ws:close to the tests.
-- Commands (text messages): "handle", "disconnects <h>", "send <h>", "sendraw <lua literal>",
-- "close <code> [reason]", "closeother <h> <code>".
local helper = require("tracker_helper")

tracker = {}

local disconnects = {}

tracker.onStart = function()
  print("tracker started")
end

local function reply(handler, text)
  return ws:send(handler, 1, text)
end

tracker.onMessage = function(handler, opcode, message)
  local cmd, rest = message:match("^(%S+)%s*(.*)$")
  if cmd == "handle" then
    return reply(handler, string.format("%.0f", handler))
  elseif cmd == "disconnects" then
    return reply(handler, tostring(disconnects[tonumber(rest)] or 0))
  elseif cmd == "send" then
    local ok, err = ws:send(tonumber(rest), 1, "hello from " .. string.format("%.0f", handler))
    return reply(handler, tostring(ok) .. " " .. tostring(err))
  elseif cmd == "sendraw" then
    local arg = assert(loadstring("return " .. rest))()
    local ok, err = ws:send(arg, 1, "x")
    return reply(handler, tostring(ok) .. " " .. tostring(err))
  elseif cmd == "badsend" then
    -- Misuse of ws:send: each case returns false and a message naming the problem.
    local results = {}
    local cases = {
      function() return ws:send(handler, 3, "x") end,
      function() return ws:send(handler, 1, {}) end,
      function() return ws:send(handler, 1, "\255") end,
      function() return ws:send("abc", 1, "x") end,
    }
    for _, case in ipairs(cases) do
      local ok, err = case()
      results[#results + 1] = tostring(ok) .. ":" .. tostring(err)
    end
    return reply(handler, table.concat(results, "|"))
  elseif cmd == "close" then
    local code, reason = rest:match("^(%d+)%s*(.*)$")
    local ok, err = ws:close(handler, tonumber(code), reason)
    if not ok then
      return reply(handler, "close failed: " .. tostring(err))
    end
    return true
  elseif cmd == "closeother" then
    local h, code = rest:match("^(%d+)%s+(%d+)$")
    local ok, err = ws:close(tonumber(h), tonumber(code))
    return reply(handler, tostring(ok) .. " " .. tostring(err))
  elseif cmd == "helper" then
    return reply(handler, helper.greeting())
  end
  return ws:send(handler, opcode, message)
end

tracker.onDisconnect = function(handler)
  disconnects[handler] = (disconnects[handler] or 0) + 1
  print(string.format("disconnect %.0f", handler))
end

tracker.onShutdown = function()
  print("tracker shutdown")
end

return tracker
