-- The message loop, compiled by the JIT together with the service's onMessage, runs as a
-- coroutine that serves one batch per resume. Upvalues arrive as `...`; lapps_protocol
-- picks the loop: LAppS protocol services get binary frames decoded and classified
-- (classify answers bad ones itself), and text frames close the connection with 1003.
local onMessage, next_ptr, false_ptr, instance_ptr, done, ffi, classify, reject_text,
  lapps_protocol = ...
local next_message = ffi.cast('int (*)(void *, double *, const char **, size_t *)', next_ptr)
local returned_false = ffi.cast('void (*)(void *)', false_ptr)
local instance = ffi.cast('void *', instance_ptr)
local handle = ffi.new('double[1]')
local data = ffi.new('const char *[1]')
local size = ffi.new('size_t[1]')
local tostr = ffi.string
local yield = coroutine.yield

if not lapps_protocol then
  return function()
    while true do
      local opcode = next_message(instance, handle, data, size)
      if opcode == 0 then
        yield(done)
      elseif onMessage(handle[0], opcode, tostr(data[0], size[0])) == false then
        returned_false(instance)
      end
    end
  end
end

return function()
  while true do
    local opcode = next_message(instance, handle, data, size)
    if opcode == 0 then
      yield(done)
    elseif opcode == 2 then
      local h = handle[0]
      local msg_type, message = classify(h, tostr(data[0], size[0]))
      if msg_type and onMessage(h, msg_type, message) == false then returned_false(instance) end
    else
      reject_text(handle[0])
    end
  end
end
