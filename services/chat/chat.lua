-- Chat rooms over the LAppS protocol. Each room is a broadcast channel; its id comes from
-- the room name (murmur), so every instance on every worker agrees on it.
--
-- Signing in: a client connects to /chat?token=JWT, an HS256 token with aud "chat" whose
-- sub is the nickname (the development issuer: POST /token on the static server, see
-- README.md). onConnect verifies it with lapps.jwt and attaches the nickname to the
-- connection. A bad or missing token:
--   * no Origin header (not a browser): the handshake is refused, 401 with the reason;
--   * a browser page: accepted, but every request is answered with error -32001 and the
--     reason, then the connection is closed with 4401 and the reason (also after 5 s
--     without a request), because a browser shows a page nothing of a refused handshake.
--
--   whoami []           -> [nick]
--   join [room]         -> [cid]  subscribes the connection to the room's channel
--   say  [room, text]   -> [true] everyone in the room gets {cid, message = {"say", nick, text}}
--   leave [room]        -> [true]
--   time []             -> [1]    subscribes to the server-time channel (cid 1, chat-time)
-- Room events are OONs: {"join", nick}, {"say", nick, text}, {"leave", nick}.
chat = {}

local TIME_CHANNEL = 1
local AUDIENCE = "chat"
local NOT_SIGNED_IN = -32001 -- error code of requests on a connection without a valid token
local CLOSE_NOT_SIGNED_IN = 4401 -- close code, 4000-4999: for applications (RFC 6455 7.4.2)
local REFUSED_GRACE_S = 5 -- a refused page that asks nothing is closed after this long

-- The HMAC secret: CHAT_SECRET_FILE, else dev-secret.txt next to this file (the one the
-- static server's dev_tokens issuer creates; services have no per-service settings yet).
local secret_file = os.getenv("CHAT_SECRET_FILE")
if not secret_file or secret_file == "" then
  local source = debug.getinfo(1, "S").source
  secret_file = (source:match("^@(.*)/[^/]*$") or ".") .. "/dev-secret.txt"
end
local secret -- read once it exists (the static server creates it before services start)
local warned = false

local function load_secret()
  if secret then return secret end
  local f = io.open(secret_file, "rb")
  if not f then return nil end
  local data = f:read("*a") or ""
  f:close()
  data = data:gsub("\r?\n$", "")
  if #data < 32 then
    if not warned then -- once: every handshake comes here while the file is wrong
      warned = true
      print("chat: " .. secret_file .. " holds " .. #data .. " bytes; HS256 needs at least 32")
    end
    return nil
  end
  secret = data
  return secret
end

local nicks = {} -- handler -> nick (signed in; from ws:info at its first message)
local refused = {} -- handler -> why (a page let in only to be told; at most 5 s)
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

-- The nickname in a token, or nil, why not and the HTTP status that says so.
local function signed_in(token)
  local key = load_secret()
  if not key then return nil, "the chat service has no token secret (" .. secret_file .. ")", 503 end
  if token == nil or token == "" then return nil, "no token: sign in first" end
  if type(token) ~= "string" then return nil, "token given more than once" end
  local claims, err = lapps.jwt.verify(token, key, { algorithms = { "HS256" }, aud = AUDIENCE })
  if not claims then return nil, "token refused: " .. err end
  if not valid_text(claims.sub, 32) then return nil, "token refused: sub is not a nickname" end
  return claims.sub
end

-- Closes a connection that did not sign in; a close reason holds at most 123 bytes.
local function close_refused(handler, why)
  refused[handler] = nil
  return ws:close(handler, CLOSE_NOT_SIGNED_IN, why:sub(1, 123))
end

chat.onConnect = function(handler, request)
  local nick, why, status = signed_in(request.args.token)
  -- The nick goes with the connection (ws:info(handler).user); onMessage reads it there
  -- once, so nothing is kept here for a handshake that never opens.
  if nick then return true, nick end
  if not request.origin then return false, status or 401, why end
  refused[handler] = why
  lapps.timer(REFUSED_GRACE_S, function()
    if refused[handler] then close_refused(handler, why) end
  end)
  return true
end

local methods = {}

function methods.whoami(handler)
  return ok(handler, { nicks[handler] })
end

function methods.join(handler, params)
  local room = params[1]
  if not valid_text(room, 64) then
    return fail(handler, -32602, "join needs [room]: a non-empty string (64 bytes at most)")
  end
  local nick = nicks[handler]
  local cid = channel_of(room)
  rooms[handler] = rooms[handler] or {}
  if rooms[handler][cid] then return ok(handler, { cid }) end -- joined already
  bcast:create(cid)
  bcast:subscribe(cid, handler)
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
  if not nicks[handler] and not refused[handler] then
    local info = ws:info(handler)
    nicks[handler] = info and info.user
  end
  local why = refused[handler] or (not nicks[handler] and "not signed in")
  if why then
    if msg_type >= 3 then fail(handler, NOT_SIGNED_IN, why) end
    close_refused(handler, why)
    return true
  end
  if msg_type < 3 then return true end -- notifications: none used
  local fn = methods[message.method]
  if not fn then return fail(handler, -32601, "no such method: " .. message.method) end
  return fn(handler, message.params or {})
end

chat.onDisconnect = function(handler)
  for cid in pairs(rooms[handler] or {}) do
    bcast:send(cid, { cid = cid, message = { "leave", nicks[handler] } })
  end
  rooms[handler], nicks[handler], refused[handler] = nil, nil, nil
end

chat.onShutdown = function() end

return chat
