-- The Lua side of the bcast module (lua/api-bcast.cc): FFI wrappers over its C entry points.
-- `errors` is the message of each result code (lua/status-messages.h).
local create_ptr, sub_ptr, unsub_ptr, send_ptr, instance_ptr, oon_error, errors = ...
local ffi = require("ffi")
local create = ffi.cast("int (*)(void *, double)", create_ptr)
local subscribe = ffi.cast("int (*)(void *, double, double)", sub_ptr)
local unsubscribe = ffi.cast("int (*)(void *, double, double)", unsub_ptr)
local send = ffi.cast("int (*)(void *, double, int, const char *, size_t)", send_ptr)
local instance = ffi.cast("void *", instance_ptr)
local type = type
local bcast = {}
local function result(name, rc)
  if rc == 0 then return true end
  return false, "bcast:" .. name .. ": " .. errors[rc]
end
function bcast.create(a, b)
  if a == bcast then a = b end
  if type(a) ~= "number" then return false, "bcast:create: " .. errors.bad_channel end
  return result("create", create(instance, a))
end
-- bcast:subscribe(id, handler) and bcast:unsubscribe(id, handler)
local function membership(name, change)
  local prefix = "bcast:" .. name .. ": "
  local bad_id, bad_handler = prefix .. errors.bad_channel, prefix .. "handler must be a number"
  return function(a, b, c)
    if a == bcast then a, b = b, c end
    if type(a) ~= "number" then return false, bad_id end
    if type(b) ~= "number" then return false, bad_handler end
    return result(name, change(instance, a, b))
  end
end
bcast.subscribe = membership("subscribe", subscribe)
bcast.unsubscribe = membership("unsubscribe", unsubscribe)
-- bcast:send(id, message[, opcode]): a string goes as is (binary unless opcode is 1); a
-- table (LAppS OON object) is encoded to CBOR once and sent as binary.
function bcast.send(a, b, c, d)
  if a == bcast then a, b, c = b, c, d end
  if type(a) ~= "number" then return false, "bcast:send: " .. errors.bad_channel end
  local opcode = c or 2
  if opcode ~= 1 and opcode ~= 2 then
    return false, "bcast:send: opcode must be 1 (text) or 2 (binary)"
  end
  if type(b) == "table" then
    if a == 0 then return false, "bcast:send: channel 0 carries responses, not broadcasts" end
    local why = oon_error(b)
    if why then return false, "bcast:send: " .. why end
    local codec = lapps and lapps.cbor
    if not codec then return false, "bcast:send: tables need the cbor module" end
    local bytes, err = codec.encode(b)
    if not bytes then return false, "bcast:send: " .. tostring(err) end
    b, opcode = bytes, 2
  elseif type(b) ~= "string" then
    return false, "bcast:send: message must be a string or a table"
  end
  return result("send", send(instance, a, opcode, b, #b))
end
return bcast
