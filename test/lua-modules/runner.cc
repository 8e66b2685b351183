// Runs the Lua tests of the C++ Lua modules (cbor, json, nljson, time, murmur, pam_auth):
// every *.lua file in the test directory gets a fresh LuaJIT state with the standard
// libraries, the modules as globals (plus pam_auth_missing, pam_auth bound to a library
// that does not exist) and a tiny harness (test, eq, errors, fails, hex, unhex). Prints
// TAP; exits 1 when a case fails or a file does not load.
//
// Usage: lapps_lua_tests [test-directory]   (default: the source tree's test/lua-modules)
#include <lua.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "lua/api-cbor.h"
#include "lua/api-json.h"
#include "lua/api-nljson.h"
#include "lua/mod-murmur.h"
#include "lua/mod-pam.h"
#include "lua/mod-time.h"

#ifndef LAPPS_LUA_TEST_DIR
#define LAPPS_LUA_TEST_DIR "test/lua-modules"
#endif

namespace {

constexpr const char* kHarness = R"lua(
local tests = {}
function test(name, fn) tests[#tests + 1] = { name = name, fn = fn } end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if v == json.null then return "null" end
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  for k, x in pairs(v) do parts[#parts + 1] = tostring(k) .. "=" .. show(x) end
  table.sort(parts)
  return "{" .. table.concat(parts, ", ") .. "}"
end
_G.show = show

-- Deep equality. Numbers and 64-bit cdata must be the same Lua type (so a test also pins
-- down which integers become cdata); NaN equals NaN; metatables are not compared.
local function same(a, b, seen)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return false end
  if ta == "number" then return a == b or (a ~= a and b ~= b) end
  if ta == "cdata" then return tostring(a) == tostring(b) end
  if ta ~= "table" then return a == b end
  if seen[a] == b then return true end
  seen[a] = b
  for k, v in pairs(a) do if not same(v, rawget(b, k), seen) then return false end end
  for k in pairs(b) do if rawget(a, k) == nil then return false end end
  return true
end

function eq(got, want, what)
  if not same(got, want, {}) then
    error((what and (what .. ": ") or "") .. "expected " .. show(want) .. ", got " .. show(got), 2)
  end
end

-- fn must raise an error whose message contains `text` (plain substring).
function errors(fn, text)
  local ok, err = pcall(fn)
  if ok then error("expected an error containing '" .. text .. "'", 2) end
  if not tostring(err):find(text, 1, true) then
    error("error '" .. tostring(err) .. "' does not contain '" .. text .. "'", 2)
  end
end

-- The nil, err contract: v must be nil and err contain `text`.
function fails(text, v, err)
  if v ~= nil then error("expected nil, err; got " .. show(v), 2) end
  if type(err) ~= "string" or not err:find(text, 1, true) then
    error("error '" .. tostring(err) .. "' does not contain '" .. text .. "'", 2)
  end
end

function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
function unhex(h)
  h = h:gsub("%s", "")
  return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end))
end

return function(file, n)
  local failed = 0
  for _, t in ipairs(tests) do
    n = n + 1
    local ok, err = xpcall(t.fn, debug.traceback)
    local name = t.name:gsub("[\r\n]", " ")
    print((ok and "ok " or "not ok ") .. n .. " - " .. file .. ": " .. name)
    if not ok then
      failed = failed + 1
      for line in tostring(err):gmatch("[^\n]+") do print("# " .. line) end
    end
  end
  return n, failed
end
)lua";

void openModule(lua_State* L, lua_CFunction open, const char* name) {
  lua_pushcfunction(L, open);
  lua_call(L, 0, 1);
  lua_setglobal(L, name);
}

int registerAll(lua_State* L) {
  luaL_openlibs(L);
  openModule(L, lapps::openNljson, "nljson");
  openModule(L, lapps::openCbor, "cbor");
  openModule(L, lapps::openJson, "json");
  openModule(L, lapps::openTime, "time");
  openModule(L, lapps::openMurmur, "murmur");
  openModule(L, lapps::openPamAuth, "pam_auth");
  lapps::openPamAuthWithLibrary(L, "liblapps-test-no-such-pam.so.0");
  lua_setglobal(L, "pam_auth_missing");
  return 0;
}

// Runs one file; returns false when it could not be loaded. n and failed accumulate.
bool runFile(const std::filesystem::path& path, int& n, int& failed) {
  std::string name = path.filename().string();
  lua_State* L = luaL_newstate();
  bool ok = L != nullptr && lua_cpcall(L, registerAll, nullptr) == 0 &&
            luaL_loadstring(L, kHarness) == 0 && lua_pcall(L, 0, 1, 0) == 0 &&
            luaL_loadfile(L, path.c_str()) == 0 && lua_pcall(L, 0, 0, 0) == 0;
  if (ok) {
    lua_pushstring(L, name.c_str());
    lua_pushinteger(L, n);
    ok = lua_pcall(L, 2, 2, 0) == 0;
    if (ok) {
      n = int(lua_tointeger(L, -2));
      failed += int(lua_tointeger(L, -1));
    }
  }
  if (!ok) {
    ++n;
    ++failed;
    std::printf("not ok %d - %s: loads and runs\n", n, name.c_str());
    if (L) std::printf("# %s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(no message)");
  }
  if (L) lua_close(L);
  std::fflush(stdout);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path dir = argc > 1 ? argv[1] : LAPPS_LUA_TEST_DIR;
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".lua") files.push_back(entry.path());
  }
  if (ec || files.empty()) {
    std::printf("1..1\nnot ok 1 - no Lua test files in %s\n", dir.c_str());
    return 1;
  }
  std::sort(files.begin(), files.end());
  int n = 0, failed = 0;
  for (const auto& f : files) runFile(f, n, failed);
  std::printf("1..%d\n", n);
  if (failed > 0) std::printf("# %d of %d failed\n", failed, n);
  return failed == 0 ? 0 : 1;
}
