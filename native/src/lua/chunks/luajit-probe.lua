-- jit.attach(handler, "trace"), then a loop hot enough to be compiled (lua/luajit-frames.cc).
local attach, handler = ...
if not jit or not jit.attach then return end
jit.on()
attach(handler, "trace")
local s = 0
for i = 1, 1000 do s = s + i % 7 end
attach(handler)
return s
