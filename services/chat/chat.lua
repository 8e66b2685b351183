-- Chat rooms over the LAppS protocol. Each room is a broadcast channel; its id comes from
-- the room name (murmur), so every instance on every worker agrees on it.
--   join [room, nick]   -> [cid]  subscribes the connection to the room's channel
--   say  [room, text]   -> [true] everyone in the room gets {cid, message = {"say", nick, text}}
--   leave [room]        -> [true]
--   time []             -> [1]    subscribes to the server-time channel (cid 1, chat-time)
-- Room events are OONs: {"join", nick}, {"say", nick, text}, {"leave", nick}.
chat = {}

local TIME_CHANNEL = 1
local nicks = {} -- handler -> nick
local rooms = {} -- handler -> { [cid] = room name }

local function channel_of(room)
  return 1000 + murmur.hashnum(room) % 1000000000
end

local function ok(handler, result)
  return ws:send(handler, { cid = 0, status = 1, result = result })
end

local function fail(handler, code, message)
  return ws:send(handler, { cid = 0, status = 0, error = { code = code, message = message } })
end

local function valid_text(s, max)
  return type(s) == "string" and #s > 0 and #s <= max
end

local methods = {}

function methods.join(handler, params)
  local room, nick = params[1], params[2]
  if not valid_text(room, 64) or not valid_text(nick, 32) then
    return fail(handler, -32602, "join needs [room, nick]: non-empty strings (64 / 32 bytes at most)")
  end
  local cid = channel_of(room)
  rooms[handler] = rooms[handler] or {}
  if rooms[handler][cid] then return ok(handler, { cid }) end -- joined already
  bcast:create(cid)
  bcast:subscribe(cid, handler)
  nicks[handler] = nick
  rooms[handler][cid] = room
  bcast:send(cid, { cid = cid, message = { "join", nick } })
  return ok(handler, { cid })
end

function methods.say(handler, params)
  local room, text = params[1], params[2]
  local cid = valid_text(room, 64) and channel_of(room)
  if not cid or not (rooms[handler] and rooms[handler][cid]) then
    return fail(handler, -32602, "say needs [room, text] for a room you joined")
  end
  if not valid_text(text, 4096) then return fail(handler, -32602, "text must be 1..4096 bytes") end
  bcast:send(cid, { cid = cid, message = { "say", nicks[handler], text } })
  return ok(handler, { true })
end

function methods.leave(handler, params)
  local room = params[1]
  local cid = valid_text(room, 64) and channel_of(room)
  if cid and rooms[handler] and rooms[handler][cid] then
    rooms[handler][cid] = nil
    bcast:unsubscribe(cid, handler)
    bcast:send(cid, { cid = cid, message = { "leave", nicks[handler] } })
  end
  return ok(handler, { true })
end

function methods.time(handler)
  local subscribed, err = bcast:subscribe(TIME_CHANNEL, handler)
  if not subscribed then return fail(handler, -32000, err) end
  return ok(handler, { TIME_CHANNEL })
end

chat.onStart = function()
  bcast:create(TIME_CHANNEL)
end

chat.onMessage = function(handler, msg_type, message)
  if msg_type < 3 then return true end -- notifications: none used
  local fn = methods[message.method]
  if not fn then return fail(handler, -32601, "no such method: " .. message.method) end
  return fn(handler, message.params or {})
end

chat.onDisconnect = function(handler)
  for cid in pairs(rooms[handler] or {}) do
    bcast:send(cid, { cid = cid, message = { "leave", nicks[handler] } })
  end
  rooms[handler], nicks[handler] = nil, nil
end

chat.onShutdown = function() end

return chat
