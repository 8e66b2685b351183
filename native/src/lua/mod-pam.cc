#include "lua/mod-pam.h"

#include <dlfcn.h>
#include <lua.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace lapps {

namespace {

constexpr const char* kLibPam = "libpam.so.0";

// The part of the Linux-PAM ABI used here (security/_pam_types.h), declared by hand so the
// build needs no libpam headers. Values and layouts are fixed by that ABI.
struct pam_handle;  // opaque
struct PamMessage {
  int msg_style;
  const char* msg;
};
struct PamResponse {
  char* resp;  // malloc'ed by the application, freed by PAM
  int resp_retcode;
};
struct PamConv {
  int (*conv)(int num_msg, const PamMessage** msg, PamResponse** resp, void* appdata_ptr);
  void* appdata_ptr;
};
constexpr int kPamSuccess = 0;
constexpr int kPamBufErr = 5;
constexpr int kPamConvErr = 19;
constexpr int kPamPromptEchoOff = 1;
constexpr int kPamErrorMsg = 3;
constexpr int kPamTextInfo = 4;
constexpr int kPamSilent = 0x8000;
constexpr int kPamDisallowNullAuthtok = 0x0001;
constexpr int kPamMaxNumMsg = 32;

struct PamLibrary {
  bool loaded = false;
  const char* missingSymbol = nullptr;  // the first function the library lacks, if any
  int (*start)(const char*, const char*, const PamConv*, pam_handle**) = nullptr;
  int (*authenticate)(pam_handle*, int) = nullptr;
  int (*acctMgmt)(pam_handle*, int) = nullptr;
  int (*end)(pam_handle*, int) = nullptr;
  const char* (*strerror)(pam_handle*, int) = nullptr;
};

template <typename Fn>
bool bind(void* handle, const char* name, Fn& fn, PamLibrary& lib) {
  void* sym = dlsym(handle, name);
  if (sym == nullptr) {
    lib.missingSymbol = name;
    return false;
  }
  fn = reinterpret_cast<Fn>(sym);
  return true;
}

PamLibrary loadLibrary(const char* soname) {
  PamLibrary lib;
  void* handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return lib;
  lib.loaded = true;
  // Stops at the first missing function, which login then names.
  bind(handle, "pam_start", lib.start, lib) &&
      bind(handle, "pam_authenticate", lib.authenticate, lib) &&
      bind(handle, "pam_acct_mgmt", lib.acctMgmt, lib) && bind(handle, "pam_end", lib.end, lib) &&
      bind(handle, "pam_strerror", lib.strerror, lib);
  return lib;
}

// A dlopen handle belongs to the process, so this cache does too: one entry per library
// name, loaded on first use and never unloaded (libpam keeps the PAM modules it loaded, and
// another thread may be inside one). nullptr when memory runs out.
const PamLibrary* library(const char* soname) {
  static std::mutex mu;
  static std::map<std::string, PamLibrary, std::less<>> libraries;  // nodes never move
  try {
    std::lock_guard lock(mu);
    auto it = libraries.find(std::string_view(soname));
    if (it == libraries.end()) it = libraries.emplace(soname, loadLibrary(soname)).first;
    return &it->second;
  } catch (const std::exception&) {
    return nullptr;
  }
}

void freeResponses(PamResponse* responses, int n) {
  for (int i = 0; i < n; ++i) {
    if (responses[i].resp == nullptr) continue;
    explicit_bzero(responses[i].resp, std::strlen(responses[i].resp));
    std::free(responses[i].resp);
  }
  std::free(responses);
}

// The conversation: appdata is the password. Linux-PAM passes msg as an array of pointers.
int converse(int n, const PamMessage** msg, PamResponse** resp, void* appdata) {
  if (n <= 0 || n > kPamMaxNumMsg || msg == nullptr || resp == nullptr) return kPamConvErr;
  auto* out = static_cast<PamResponse*>(std::calloc(size_t(n), sizeof(PamResponse)));
  if (out == nullptr) return kPamBufErr;
  for (int i = 0; i < n; ++i) {
    int style = msg[i]->msg_style;
    if (style == kPamPromptEchoOff) {
      out[i].resp = strdup(static_cast<const char*>(appdata));
      if (out[i].resp == nullptr) {
        freeResponses(out, n);
        return kPamBufErr;
      }
    } else if (style != kPamErrorMsg && style != kPamTextInfo) {
      freeResponses(out, n);  // a prompt we cannot answer (echo on, radio, binary)
      return kPamConvErr;
    }
  }
  *resp = out;
  return kPamSuccess;
}

// Runs the PAM transaction; on failure writes "pam_auth: <pam_strerror>" into message.
bool authenticate(const PamLibrary& lib, const char* service, const char* user,
                  const char* password, char* message, size_t size) {
  PamConv conv{converse, const_cast<char*>(password)};
  pam_handle* h = nullptr;
  constexpr int kFlags = kPamSilent | kPamDisallowNullAuthtok;
  int rc = lib.start(service, user, &conv, &h);
  if (rc == kPamSuccess) rc = lib.authenticate(h, kFlags);
  if (rc == kPamSuccess) rc = lib.acctMgmt(h, kFlags);
  if (rc != kPamSuccess) {
    const char* text = lib.strerror(h, rc);  // Linux-PAM accepts a null handle here
    std::snprintf(message, size, "pam_auth: %s", text != nullptr ? text : "unknown PAM error");
  }
  if (h != nullptr) lib.end(h, rc);
  return rc == kPamSuccess;
}

// Argument idx as a C string; raises the misuse error.
const char* checkString(lua_State* L, int idx, const char* what) {
  if (lua_type(L, idx) != LUA_TSTRING) {
    luaL_error(L, "pam_auth.login: %s must be a string, got %s", what, luaL_typename(L, idx));
  }
  size_t n;
  const char* s = lua_tolstring(L, idx, &n);
  if (std::strlen(s) != n) luaL_error(L, "pam_auth.login: %s contains a NUL byte", what);
  return s;
}

int fail(lua_State* L) {  // the message is on top
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  return 2;
}

// Upvalue 1: the module table (a colon call passes it first); upvalue 2: the library name.
int login(lua_State* L) {
  int base = lua_rawequal(L, 1, lua_upvalueindex(1)) ? 1 : 0;
  const char* service = checkString(L, base + 1, "service");
  const char* user = checkString(L, base + 2, "user");
  const char* password = checkString(L, base + 3, "password");
  const char* soname = lua_tostring(L, lua_upvalueindex(2));
  const PamLibrary* lib = library(soname);
  if (lib == nullptr) {
    lua_pushliteral(L, "pam_auth: out of memory");
    return fail(L);
  }
  if (!lib->loaded) {
    lua_pushfstring(L, "pam_auth: libpam is not installed (%s not found)", soname);
    return fail(L);
  }
  if (lib->missingSymbol != nullptr) {
    lua_pushfstring(L, "pam_auth: %s has no %s", soname, lib->missingSymbol);
    return fail(L);
  }
  char message[256];
  if (authenticate(*lib, service, user, password, message, sizeof message)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushstring(L, message);
  return fail(L);
}

}  // namespace

int openPamAuth(lua_State* L) {
  return openPamAuthWithLibrary(L, kLibPam);
}

int openPamAuthWithLibrary(lua_State* L, const char* soname) {
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, -1);
  lua_pushstring(L, soname);
  lua_pushcclosure(L, login, 2);
  lua_setfield(L, -2, "login");
  return 1;
}

}  // namespace lapps
