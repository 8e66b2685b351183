-- Drives lapps.jwt from messages: each message is a JSON request, the answer a JSON reply.
--   {"op":"verify","token":...,"key":<string or JWK table>,"options":{...}}
--     -> {"claims":{...},"header":{...}} | {"err":"..."} | {"raised":"..."}
--   {"op":"sign","claims":{...},"key":...,"alg":"ES256"} -> {"token":"..."} | {"err":"..."}
local json = lapps.json

local jwt_service = {}

local function run(req)
  if req.op == "verify" then
    local claims, header_or_err = lapps.jwt.verify(req.token, req.key, req.options)
    if claims then return { claims = claims, header = header_or_err } end
    return { err = header_or_err }
  elseif req.op == "sign" then
    local token, err = lapps.jwt.sign(req.claims, req.key, req.alg)
    if token then return { token = token } end
    return { err = err }
  end
  return { err = "unknown op" }
end

jwt_service.onStart = function() end
jwt_service.onDisconnect = function() end
jwt_service.onShutdown = function() end

jwt_service.onMessage = function(handler, _, message)
  local req = json.decode(message)
  -- json.null stands for an absent field.
  for k, v in pairs(req) do
    if v == json.null then req[k] = nil end
  end
  local ok, reply = pcall(run, req)
  if not ok then reply = { raised = tostring(reply) } end
  ws:send(handler, 1, json.encode(reply))
  return true
end

return jwt_service
