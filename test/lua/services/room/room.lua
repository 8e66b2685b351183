-- luacheck: globals room
-- Broadcast channels driven by the tests. Text commands:
-- "create <id>", "join <id>", "leave <id>", "say <id> <text>", "saybin <id> <text>",
-- "joinother <id> <handler>", "misuse", "burst <id> <count> <size>" (one handler broadcasts
-- count binary messages of size bytes, the first byte of each its number mod 256),
-- "sendto <handler> <count> <size>" (ws:send to that connection until a send fails),
-- "interleave <id> <other handler>" (see below).
room = {}

room.onStart = function()
  assert(bcast:create(1))
end

local function reply(handler, text)
  return ws:send(handler, 1, text)
end

local function result(ok, err)
  return tostring(ok) .. " " .. tostring(err)
end

room.onMessage = function(handler, _opcode, message)
  local cmd, id, rest = message:match("^(%S+)%s*(%d*)%s*(.*)$")
  id = tonumber(id)
  if cmd == "create" then
    return reply(handler, result(bcast:create(id)))
  elseif cmd == "join" then
    return reply(handler, result(bcast:subscribe(id, handler)))
  elseif cmd == "leave" then
    return reply(handler, result(bcast:unsubscribe(id, handler)))
  elseif cmd == "say" then
    local ok, err = bcast:send(id, rest, 1)
    if not ok then return reply(handler, result(ok, err)) end
    return true
  elseif cmd == "saybin" then
    local ok, err = bcast:send(id, rest)
    if not ok then return reply(handler, result(ok, err)) end
    return true
  elseif cmd == "sayobj" then
    -- A LAppS OON object: CBOR-encoded once by bcast.
    local ok, err = bcast:send(id, { cid = 1, message = { "hi" } })
    if not ok then return reply(handler, result(ok, err)) end
    return true
  elseif cmd == "nljson" then
    local obj = nljson.decode('{"a":[1,2],"n":7}')
    obj.a[1] = "x"
    local map = nljson.decode("{}")
    map[tostring(handler)] = true
    local found = nljson.find(map, handler) and nljson.typename(obj) == "object" and obj.n == 7
    return reply(handler, nljson.encode(obj) .. " " .. tostring(found))
  elseif cmd == "joinother" then
    return reply(handler, result(bcast:subscribe(id, tonumber(rest))))
  elseif cmd == "burst" then
    local count, size = rest:match("^(%d+) (%d+)$")
    local body = string.rep("b", tonumber(size) - 1)
    for i = 1, tonumber(count) do
      local ok, err = bcast:send(id, string.char(i % 256) .. body)
      if not ok then return reply(handler, result(ok, err)) end
    end
    return true
  elseif cmd == "sendto" then
    local to, count, size = message:match("^sendto (%d+) (%d+) (%d+)$")
    local body = string.rep("s", tonumber(size))
    local sent, err = 0, nil
    for _ = 1, tonumber(count) do
      local ok, e = ws:send(tonumber(to), 2, body)
      if not ok then err = e break end
      sent = sent + 1
    end
    return reply(handler, "sent " .. sent .. " then " .. tostring(err))
  elseif cmd == "interleave" then
    -- Broadcasts and direct sends in one handler reach a subscriber in the order made; a
    -- subscription made after a broadcast does not get it, one ended after it does.
    local other = tonumber(rest)
    assert(bcast:send(id, "b1"))
    assert(bcast:send(id, "b2"))
    assert(ws:send(handler, 1, "direct"))
    assert(bcast:send(id, "b3"))
    assert(bcast:unsubscribe(id, handler))
    assert(bcast:send(id, "b4"))
    assert(bcast:subscribe(id, handler))
    assert(bcast:send(id, "b5"))
    assert(bcast:subscribe(id, other))
    assert(bcast:send(id, "b6"))
    return ws:close(handler, 1000, "done")
  elseif cmd == "handle" then
    return reply(handler, string.format("%.0f", handler))
  elseif cmd == "misuse" then
    local out = {}
    for _, r in ipairs({
      { bcast:send(99, "x") },
      { bcast:subscribe(1.5, handler) },
      { bcast:subscribe(1, "h") },
      { bcast:send(1, 42) },
      { bcast:send(1, "\255", 1) },
      { bcast:create("x") },
    }) do
      out[#out + 1] = result(r[1], r[2])
    end
    return reply(handler, table.concat(out, "|"))
  end
  return reply(handler, "unknown command")
end

room.onDisconnect = function(_handler) end

room.onShutdown = function() end

return room
