-- A LAppS protocol service in LAppS style, plus methods that exercise the id extension.
echo_lapps = {}

local function respond(handler, result)
  local response = nljson.decode([[{"cid": 0, "status": 1, "result": []}]])
  response.result = result
  return ws:send(handler, response)
end

echo_lapps.onStart = function()
  bcast:create(5)
end

echo_lapps.onMessage = function(handler, msg_type, message)
  local method = message.method
  if msg_type == 1 or msg_type == 2 then
    if method == "publish" then
      local ok, err = bcast:send(5, { cid = 5, message = message.params })
      if not ok then print(err) end
    end
    return true
  end
  if method == "echo" then
    return respond(handler, message.params or {})
  elseif method == "types" then
    local p = message.params
    -- 64-bit integers arrive as integers, not doubles; maps and arrays keep their kind.
    return respond(handler, { nljson.typename(p), p[1] == 9007199254740993LL, nljson.typename(p[2]) })
  elseif method == "later" then
    -- Answers after params[1] seconds with an explicit id: responses may overtake.
    local id, delay, value = message.id, message.params[1], message.params[2]
    lapps.spawn(function()
      lapps.sleep(delay)
      ws:send(handler, { cid = 0, status = 1, result = { value }, id = id })
    end)
    return true
  elseif method == "subscribe" then
    bcast:subscribe(5, handler)
    return respond(handler, { "subscribed" })
  elseif method == "misuse" then
    local results = {}
    for _, bad in ipairs({
      { cid = 0, status = 7 },
      { cid = 0, status = 1 },
      { cid = 0, status = 0, error = { code = "x" } },
      { cid = 3, status = 1, message = {} },
      { cid = 3, message = "not an array" },
      { cid = -1 },
      "not a table at all",
    }) do
      local ok, err = ws:send(handler, bad)
      results[#results + 1] = tostring(ok) .. ":" .. tostring(err)
    end
    local ok, err = bcast:send(5, { cid = 0, status = 1, result = {} })
    results[#results + 1] = tostring(ok) .. ":" .. tostring(err)
    ok, err = bcast:send(0, { cid = 5, message = {} })
    results[#results + 1] = tostring(ok) .. ":" .. tostring(err)
    return respond(handler, results)
  elseif method == "oon" then
    ws:send(handler, { cid = 7, message = { "pushed" } })
    return respond(handler, { "after oon" })
  elseif method == "twice" then
    respond(handler, { 1 })
    local ok, err = respond(handler, { 2 })
    print("second response: " .. tostring(ok) .. " " .. tostring(err))
    return true
  end
  return ws:send(handler, { cid = 0, status = 0, error = { code = -32601, message = "no such method: " .. method } })
end

echo_lapps.onDisconnect = function() end
echo_lapps.onShutdown = function() end

return echo_lapps
