-- Reports what the sandbox left reachable.
local sandboxed = {}

local function probe()
  local out = {}
  out[#out + 1] = "io=" .. type(io)
  out[#out + 1] = "execute=" .. type(os.execute)
  out[#out + 1] = "debug=" .. type(debug)
  out[#out + 1] = "ffi=" .. tostring((pcall(require, "ffi")))
  out[#out + 1] = "loadlib=" .. type(package.loadlib)
  local bc = string.char(27) .. "LJ\2"
  local f, err = loadstring(bc)
  out[#out + 1] = "bytecode=" .. tostring(f) .. ":" .. tostring(err)
  f = load(function() local s = bc; bc = nil; return s end)
  out[#out + 1] = "bytecode_reader=" .. tostring(f)
  out[#out + 1] = "text=" .. tostring(loadstring("return 1 + 1")())
  out[#out + 1] = "helper=" .. require("sandbox_helper").value
  out[#out + 1] = "os.time=" .. type(os.time)
  out[#out + 1] = "exit=" .. tostring((pcall(os.exit, 1)))
  return table.concat(out, " ")
end

function sandboxed.onStart() end
function sandboxed.onMessage(h)
  ws:send(h, 1, probe())
  return true
end
function sandboxed.onDisconnect() end
function sandboxed.onShutdown() end
return sandboxed
