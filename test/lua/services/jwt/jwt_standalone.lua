-- A standalone service signs and verifies a token in init and logs the outcome: lapps.jwt
-- is on the lapps table off the IO workers too.
jwt_standalone = {}

jwt_standalone.init = function()
  local secret = string.rep("k", 32)
  local token = assert(lapps.jwt.sign({ sub = "standalone", n = 7 }, secret, "HS256"))
  local claims, header = lapps.jwt.verify(token, secret, { algorithms = { "HS256" } })
  print("jwt standalone " .. claims.sub .. " " .. claims.n .. " " .. header.alg)
end

jwt_standalone.run = function()
  local n = nap:new()
  while not must_stop() do
    n:usleep(20000)
  end
end

return jwt_standalone
