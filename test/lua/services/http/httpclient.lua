-- lapps.http from a reactive service. A command is tab-separated:
--   req METHOD URL TIMEOUT MAX_BODY CA BODY [NAME VALUE]...   (empty fields are nil)
-- and the answer is "ok\tSTATUS\tBODY_LENGTH\tHEADERS\tBODY_PREFIX\tIDLE" (HEADERS sorted
-- "name=value" joined by "|") or "err\tERROR\tIDLE", IDLE being the keep-alive pool's size.
local httpclient = {}

local function send(h, text) ws:send(h, 1, text) end

local function split(s)
  local out = {}
  for field in (s .. "\t"):gmatch("([^\t]*)\t") do out[#out + 1] = field end
  return out
end

local function opt(s)
  if s ~= nil and s ~= "" then return s end
  return nil
end

local function request(h, f)
  local headers = {}
  for i = 8, #f - 1, 2 do headers[f[i]] = f[i + 1] end
  local status, hdrs, body = lapps.http.request({
    method = opt(f[2]),
    url = f[3],
    timeout = tonumber(opt(f[4])),
    max_body = tonumber(opt(f[5])),
    ca = opt(f[6]),
    body = opt(f[7]),
    headers = headers,
  })
  if not status then return send(h, "err\t" .. tostring(hdrs) .. "\t" .. lapps.http.idle()) end
  local list = {}
  for k, v in pairs(hdrs) do list[#list + 1] = k .. "=" .. v end
  table.sort(list)
  send(h, table.concat({ "ok", status, #body, table.concat(list, "|"), body:sub(1, 300),
    lapps.http.idle() }, "\t"))
end

function httpclient.onStart() end

function httpclient.onMessage(h, _, message)
  local f = split(message)
  if f[1] == "req" then
    request(h, f)
  elseif f[1] == "misuse" then
    local ok, err = pcall(lapps.http.request, { url = "http://x/", headers = { [f[2]] = f[3] } })
    send(h, tostring(ok) .. " " .. tostring(err))
  else
    send(h, "echo " .. message)
  end
  return true
end

function httpclient.onDisconnect() end
function httpclient.onShutdown() end

return httpclient
