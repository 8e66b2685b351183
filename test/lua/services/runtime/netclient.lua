-- Outbound sockets from a reactive service: lapps.websocket, lapps.tcp and LAppS's cws.
-- Commands arrive as "<what> <args>"; answers go back to the asking connection.
local netclient = {}
local ca -- CA file for wss:// and TLS, set by "ca <path>"

local function send(h, text) ws:send(h, 1, text) end

local commands = {}

commands.ca = function(h, path)
  ca = path
  send(h, "ca set")
end

commands.ws = function(h, url)
  local sock, err = lapps.websocket.connect(url, { ca = ca, timeout = 3 })
  if not sock then return send(h, "connect failed: " .. tostring(err)) end
  assert(sock:send_text("hello"))
  local text, op = sock:receive(3)
  assert(sock:send_binary("\0\1\2"))
  local bin, op2 = sock:receive(3)
  sock:close()
  local after, why = sock:receive(3)
  send(h, table.concat({ "ws", tostring(text), op, #bin, op2, tostring(after), tostring(why) }, " "))
end

commands.wstimeout = function(h, url)
  local sock, err = lapps.websocket.connect(url, { ca = ca, timeout = 3 })
  if not sock then return send(h, "connect failed: " .. tostring(err)) end
  local msg, e = sock:receive(0.1) -- the peer sends nothing unprompted
  sock:close()
  send(h, tostring(msg) .. " " .. tostring(e))
end

commands.tcp = function(h, args)
  local host, port, tls = args:match("^(%S+) (%d+) ?(%S*)$")
  local sock, err = lapps.tcp.connect(host, tonumber(port), { tls = tls == "tls", ca = ca, timeout = 3 })
  if not sock then return send(h, "connect failed: " .. tostring(err)) end
  assert(sock:send("ping\n"))
  local got = {}
  while #table.concat(got) < 5 do
    local data, e = sock:receive(nil, 3)
    if not data then return send(h, "receive failed: " .. tostring(e)) end
    got[#got + 1] = data
  end
  sock:close()
  send(h, "tcp " .. table.concat(got):gsub("\n", ""))
end

commands.cws = function(h, url)
  local got = {}
  cws:new(url, {
    onopen = function(h2) cws:send(h2, "one", 1) end,
    onmessage = function(h2, msg, opcode)
      got[#got + 1] = msg .. ":" .. opcode
      if #got == 1 then
        cws:send(h2, "two", 2)
      else
        cws:close(h2)
      end
    end,
    onerror = function(_, err) send(h, "cws error " .. tostring(err)) end,
    onclose = function() send(h, "cws " .. table.concat(got, " ")) end,
  }, { ca = ca })
end

function netclient.onStart() end

function netclient.onMessage(h, _, message)
  local cmd, arg = message:match("^(%S+)%s*(.*)$")
  local fn = commands[cmd]
  if fn then
    fn(h, arg)
  else
    send(h, message)
  end
  return true
end

function netclient.onDisconnect() end
function netclient.onShutdown() end

return netclient
