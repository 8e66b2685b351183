-- Lua services run in LuaJIT with the lapps modules as globals.
std = "luajit"
globals = { "echo" }
read_globals = {
  "ws", "bcast", "nljson", "lapps",
  -- standalone services, and the preloadable LAppS modules (listed in `preload`)
  "must_stop", "instance_id", "mqr", "nap", "time", "murmur", "cws", "pam_auth",
}
-- LAppS services set a global table named after the service (`ticker = {}`).
allow_defined_top = true
max_line_length = 120

-- The Lua module tests: test/lua-modules/runner.cc defines the harness functions and the
-- modules (pam_auth_missing is pam_auth bound to a library that does not exist).
files["test/lua-modules"] = {
  read_globals = {
    "test", "eq", "errors", "fails", "hex", "unhex", "show",
    "cbor", "json", "time", "murmur", "pam_auth", "pam_auth_missing",
  },
}

-- The Lua halves of native modules, embedded into the addon at build time
-- (cmake/EmbedLua.cmake): chunks that get what they use as `...`, and define no globals.
files["native/src"] = {
  new_globals = {},
  new_read_globals = {},
  allow_defined_top = false,
}
-- The sandbox replaces and removes standard globals on purpose.
files["native/src/lua/chunks/sandbox.lua"] = {
  globals = { "load", "loadstring", "loadfile", "dofile", "io", "debug", "package", "os", "string", "jit" },
}
-- bcast:send encodes tables with the service's lapps.cbor, looked up when it sends.
files["native/src/lua/chunks/bcast.lua"] = { read_globals = { "lapps" } }
