-- The Lua side of the ws module (lua/api-ws.cc). Upvalues come in as `...`: the two entry
-- points and the instance, all as light userdata, the LAppS object sender, and the message
-- of each result code (lua/status-messages.h). Argument checks stay in Lua, where the JIT
-- removes them for well-typed calls; the C side checks what Lua cannot (handles, UTF-8).
local send_ptr, close_ptr, instance_ptr, send_object, errors = ...
local ffi = require("ffi")
local send = ffi.cast("int (*)(void *, double, int, const char *, size_t)", send_ptr)
local close = ffi.cast("int (*)(void *, double, double, const char *, size_t)", close_ptr)
local instance = ffi.cast("void *", instance_ptr)
local type = type
local ws = {}
-- Called as ws:send(handler, opcode, message) (LAppS) or ws.send(handler, opcode, message).
function ws.send(a, b, c, d)
  if a == ws then a, b, c = b, c, d end
  if type(a) ~= "number" then return false, "ws:send: handler must be a number" end
  -- ws:send(handler, object): a LAppS response or OON, checked and encoded to CBOR.
  if type(b) == "table" then return send_object(a, b) end
  if b ~= 1 and b ~= 2 then
    if type(b) ~= "number" then return false, "ws:send: opcode must be a number" end
    return false, "ws:send: opcode must be 1 (text) or 2 (binary)"
  end
  if type(c) ~= "string" then return false, "ws:send: message must be a string" end
  local rc = send(instance, a, b, c, #c)
  if rc == 0 then return true end
  return false, errors[rc]
end
-- ws:close(handler[, code[, reason]])
function ws.close(a, b, c, d)
  if a == ws then a, b, c = b, c, d end
  if type(a) ~= "number" then return false, "ws:close: handler must be a number" end
  if b == nil then b = 1000 end
  if type(b) ~= "number" then return false, "ws:close: code must be a number" end
  if c == nil then c = "" end
  if type(c) ~= "string" then return false, "ws:close: reason must be a string" end
  local rc = close(instance, a, b, c, #c)
  if rc == 0 then return true end
  return false, errors[rc]
end
return ws
