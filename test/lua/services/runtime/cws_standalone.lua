-- A standalone service driving cws with eventLoop(), as LAppS's cws benchmark does.
cws_standalone = {}
local url = os.getenv("LAPPS_TEST_CWS_URL")
local received = 0

cws_standalone.init = function() end

cws_standalone.run = function()
  for i = 1, 20 do
    cws:new(url, {
      onopen = function(s) cws:send(s, "m" .. i, 2) end,
      onmessage = function(s, msg, opcode)
        received = received + 1
        if received <= 200 then cws:send(s, msg, opcode) end
      end,
    })
    if i % 10 == 0 then cws:eventLoop() end
  end
  while not must_stop() do
    cws:eventLoop()
    if received >= 200 then
      print("cws_standalone received " .. received)
      received = -1e9
    end
  end
end

return cws_standalone
