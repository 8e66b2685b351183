-- A trampoline run on the main Lua stack: (callbacks, name, handler, extra...) ->
-- callbacks[name](handler, extra...) if it is a function.
local callbacks, name, handler = ...
local fn = callbacks[name]
if type(fn) == "function" then return fn(handler, select(4, ...)) end
