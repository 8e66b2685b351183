-- The pam_auth module. Which case applies is decided by looking for libpam on disk, so the
-- file fails if the module misbehaves in either case: with libpam, a login that cannot
-- succeed (no such service, no such user) returns false and PAM's message; without it, the
-- clear "not installed" error. pam_auth_missing (the module bound to a library name that
-- does not exist) checks the missing-library path on every machine. No real credentials.

local libdirs = {
  "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
}
local function haveLibpam()
  for _, dir in ipairs(libdirs) do
    local f = io.open(dir .. "/libpam.so.0", "rb")
    if f then
      f:close()
      return true
    end
  end
  return false
end
local HAVE_LIBPAM = haveLibpam()
local NOT_INSTALLED = "pam_auth: libpam is not installed (libpam.so.0 not found)"
local SERVICE, USER = "lapps-test-no-such-service", "lapps-test-no-such-user"

-- Every argument error, through the colon and the dot call alike, before PAM is touched.
local function argumentErrors(m, call)
  errors(function() call(m) end, "pam_auth.login: service must be a string, got no value")
  errors(function() call(m, nil, "u", "p") end, "pam_auth.login: service must be a string, got nil")
  errors(function() call(m, "s") end, "pam_auth.login: user must be a string, got no value")
  errors(function() call(m, "s", 42, "p") end, "pam_auth.login: user must be a string, got number")
  errors(function() call(m, "s", "u") end, "pam_auth.login: password must be a string, got no value")
  errors(function() call(m, "s", "u", {}) end, "pam_auth.login: password must be a string, got table")
  errors(function() call(m, "s\0x", "u", "p") end, "pam_auth.login: service contains a NUL byte")
  errors(function() call(m, "s", "u\0", "p") end, "pam_auth.login: user contains a NUL byte")
  errors(function() call(m, "s", "u", "p\0w") end, "pam_auth.login: password contains a NUL byte")
end
local function colon(m, ...) return m:login(...) end
local function dot(m, ...) return m.login(...) end

test("argument errors (colon call)", function() argumentErrors(pam_auth, colon) end)
test("argument errors (dot call)", function() argumentErrors(pam_auth, dot) end)
test("argument errors come first even without libpam", function()
  argumentErrors(pam_auth_missing, colon)
  argumentErrors(pam_auth_missing, dot)
end)
test("another table as the first argument is not taken for self", function()
  errors(function() pam_auth.login({}, "s", "u", "p") end, "pam_auth.login: service must be a string, got table")
end)

test("a missing library gives the clear error, never a crash", function()
  local ok, err = pam_auth_missing:login(SERVICE, USER, "x")
  eq({ ok, err }, { false, "pam_auth: libpam is not installed (liblapps-test-no-such-pam.so.0 not found)" })
  eq({ pam_auth_missing.login(SERVICE, USER, "x") }, { false,
    "pam_auth: libpam is not installed (liblapps-test-no-such-pam.so.0 not found)" })
end)

-- The PAM message when libpam is there; the clear error when it is not.
local function checkFailure(ok, err, n)
  eq(ok, false, "login result")
  eq(n, 2, "number of results")
  if HAVE_LIBPAM then
    if type(err) ~= "string" or not err:match("^pam_auth: %S") then
      error("expected 'pam_auth: <PAM message>', got " .. show(err))
    end
    if err == NOT_INSTALLED then error("libpam.so.0 is on disk but the module did not load it") end
  else
    eq(err, NOT_INSTALLED)
  end
end

-- Each failed login costs PAM's fail delay (about 2 s), so each is made once.
local function pack(...) return { n = select("#", ...), ... } end

test("login of a nonexistent user of a nonexistent service fails (colon call)", function()
  local r = pack(pam_auth:login(SERVICE, USER, "not-a-password"))
  checkFailure(r[1], r[2], r.n)
end)

test("login of a nonexistent user fails (dot call, empty password)", function()
  local r = pack(pam_auth.login(SERVICE, USER, ""))
  checkFailure(r[1], r[2], r.n)
end)
