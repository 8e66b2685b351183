// The preloadable `pam_auth` module (LAppS): password checks through Linux-PAM.
//   pam_auth:login(service, user, password)  -> true | false, message
// pam_auth.login(service, user, password) works too. It runs pam_authenticate, then
// pam_acct_mgmt (expired or locked accounts fail), both with PAM_SILENT and
// PAM_DISALLOW_NULL_AUTHTOK (an account with an empty password never logs in), for the
// stack /etc/pam.d/<service> (an unknown service falls back to /etc/pam.d/other). The
// conversation answers each PAM_PROMPT_ECHO_OFF prompt with `password`, skips info and
// error messages, and fails any other prompt (so modules that ask for more than a password
// fail with "Conversation error"). message is "pam_auth: " followed by pam_strerror's text.
//
// IT BLOCKS: PAM modules read files, may ask a network service (LDAP, Kerberos, SSSD), and
// pam_unix waits about 2 s after a failed attempt (its fail delay, a brute-force brake).
// Call it from a standalone service, not from a reactive service's onMessage.
//
// libpam.so.0 is loaded with dlopen on the first login, so neither the build nor the server
// needs libpam: without it login returns false, "pam_auth: libpam is not installed
// (libpam.so.0 not found)". Misuse (a missing or non-string argument, a NUL byte in one)
// raises a Lua error. pam_unix checks another user's password only when the process runs as
// root (it reads /etc/shadow); otherwise its helper checks the calling user's own only.
#pragma once

struct lua_State;

namespace lapps {

// Pushes the module table (a lua_CFunction).
int openPamAuth(lua_State* L);

// For tests: the same module, loading `soname` instead of libpam.so.0 (a name that does not
// exist exercises the missing-library path). The name is copied.
int openPamAuthWithLibrary(lua_State* L, const char* soname);

}  // namespace lapps
