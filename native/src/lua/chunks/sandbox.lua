-- Text-only loaders: a chunk that starts with the bytecode signature (ESC) is refused.
-- Upvalue: readfile(path) -> text | nil, err.
local string_byte, type, error = string.byte, type, error
local load0, loadstring0, readfile = load, loadstring, ...
local refused = "bytecode loading is disabled (sandbox)"
local function is_bytecode(s) return type(s) == "string" and string_byte(s, 1) == 27 end

loadstring = function(s, name)
  if is_bytecode(s) then return nil, refused end
  return loadstring0(s, name)
end
load = function(chunk, name, ...)
  if type(chunk) == "function" then
    local parts = {}
    while true do
      local piece = chunk()
      if piece == nil or piece == "" then break end
      if type(piece) ~= "string" then return nil, "reader function must return a string" end
      parts[#parts + 1] = piece
    end
    chunk = table.concat(parts)
  end
  if is_bytecode(chunk) then return nil, refused end
  return load0(chunk, name, ...)
end
local function loadfile_text(path)
  local text, err = readfile(path)
  if not text then return nil, err end
  if is_bytecode(text) then return nil, path .. ": " .. refused end
  return loadstring0(text, "@" .. path)
end
loadfile = loadfile_text
dofile = function(path)
  local f, err = loadfile_text(path)
  if not f then error(err, 2) end
  return f()
end

-- require: preloaded modules, then Lua files (as text) on package.path; no C modules.
local package = package
package.loadlib = nil
package.cpath = ""
package.loaders[2] = function(name)
  local tried = {}
  for template in package.path:gmatch("[^;]+") do
    local p = template:gsub("%?", (name:gsub("%.", "/")))
    local text = readfile(p)
    if text then
      if is_bytecode(text) then error(p .. ": " .. refused, 0) end
      local fn, e = loadstring0(text, "@" .. p)
      if not fn then error(e, 0) end
      return fn
    end
    tried[#tried + 1] = "\n\tno file '" .. p .. "'"
  end
  return table.concat(tried)
end
package.loaders[3] = nil
package.loaders[4] = nil

io = nil
package.loaded.io = nil
debug = nil
package.loaded.debug = nil
package.loaded.ffi = nil
package.preload.ffi = nil
for _, k in ipairs({ "execute", "remove", "rename", "tmpname", "getenv" }) do os[k] = nil end
string.dump = nil
if jit then jit.util = nil end
package.loaded["jit.util"] = nil
package.preload["jit.util"] = nil
