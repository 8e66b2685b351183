-- The chat's server-time channel: a standalone service broadcasting {cid = 1,
-- message = {milliseconds since the epoch}} every second.
chat_time = {}

chat_time.init = function()
  bcast:create(1)
end

chat_time.run = function()
  while not must_stop() do
    bcast:send(1, { cid = 1, message = { time.now() } })
    lapps.sleep(1)
  end
end

return chat_time
