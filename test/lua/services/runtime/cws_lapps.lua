-- cws written the way LAppS services write it: handlers are numbers, concatenated into
-- strings and used as table keys; sends and closes go through cws with the number.
-- "open <url> <n>" opens n sockets; the answer comes once every one has closed.
cws_lapps = {}

local log = {}
local function note(s) log[#log + 1] = s end

local function run(asker, url, n)
  local byHandler, types, closed, sockets = {}, {}, 0, {}
  local last
  local callbacks = {
    onopen = function(handler)
      types[type(handler)] = true
      byHandler[handler] = 0
      local ok, err = cws:send(handler, "socketfd " .. handler, 2)
      if not ok then note("send failed at handler " .. handler .. ": " .. err) end
    end,
    onmessage = function(handler, message, opcode)
      byHandler[handler] = byHandler[handler] + 1
      if message ~= "socketfd " .. handler then note("wrong echo " .. message .. " at " .. handler) end
      if byHandler[handler] < 3 then
        cws:send(handler, message, opcode)
      else
        local ok = cws:close(handler)
        if not ok then note("close failed at " .. handler) end
      end
    end,
    onerror = function(handler, message)
      note("error at socketfd " .. handler .. ": " .. tostring(message))
    end,
    onclose = function(handler)
      types[type(handler)] = true
      closed = closed + 1
      last = handler
      if closed < n then return end
      -- Every socket closed: what a stale, a made-up, a fractional and a connection's own
      -- handler get from cws.
      local _, stale = cws:send(last, "late", 2)
      local _, madeUp = cws:send(last + 1000, "x", 2)
      local _, fraction = cws:send(1.5, "x", 2)
      local _, foreign = cws:send(asker, "x", 2)
      local _, closeUnknown = cws:close(last + 1000)
      local misuse = select(2, pcall(cws.send, cws, "1", "x", 2))
      local counts, keys = {}, 0
      for h, c in pairs(byHandler) do
        keys = keys + 1
        counts[#counts + 1] = c
        if type(h) ~= "number" then note("non-number key " .. tostring(h)) end
      end
      local t = {}
      for k in pairs(types) do t[#t + 1] = k end
      ws:send(asker, 1, table.concat({
        "types=" .. table.concat(t, ","),
        "keys=" .. keys,
        "counts=" .. table.concat(counts, ","),
        "stale=" .. tostring(stale),
        "madeup=" .. tostring(madeUp),
        "fraction=" .. tostring(fraction),
        "foreign=" .. tostring(foreign),
        "closeunknown=" .. tostring(closeUnknown),
        "misuse=" .. tostring(misuse):gsub("^.-: ", ""),
        "log=" .. table.concat(log, ";"),
      }, "\n"))
      for i = 1, #sockets do sockets[i] = nil end
    end,
  }
  for i = 1, n do
    sockets[i] = cws:new(url, callbacks)
  end
end

function cws_lapps.onStart() end

function cws_lapps.onMessage(handler, _, message)
  local url, n = message:match("^open (%S+) (%d+)$")
  if url then run(handler, url, tonumber(n)) end
  return true
end

function cws_lapps.onDisconnect() end
function cws_lapps.onShutdown() end

return cws_lapps
