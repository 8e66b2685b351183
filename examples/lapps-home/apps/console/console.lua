-- console: a raw reactive service; a client sending "subscribe" gets the broadcasts of 1000 and 1001
console = {}

console.onStart = function()
end

console.onDisconnect = function(handler) -- luacheck: no unused args
end

console.onShutdown = function()
end

console.onMessage = function(handler, opcode, message) -- luacheck: no unused args
  if message == "subscribe" then
    bcast:subscribe(1000, handler)
    bcast:subscribe(1001, handler)
    return ws:send(handler, 1, "subscribed")
  elseif message == "unsubscribe" then
    bcast:unsubscribe(1000, handler)
    bcast:unsubscribe(1001, handler)
    return ws:send(handler, 1, "unsubscribed")
  end
  return ws:send(handler, 1, "commands: subscribe, unsubscribe")
end

return console
