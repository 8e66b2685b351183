-- Lua services run in LuaJIT with the lapps modules as globals.
std = "luajit"
globals = { "echo" }
read_globals = { "ws", "bcast", "nljson", "lapps" }
max_line_length = 120
