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
