#include "lua/luajit-frames.h"

#include <dlfcn.h>
#include <unwind.h>
#include <lua.hpp>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "embedded-lua.h"

namespace lapps {

namespace {

// Start addresses (unwind regions) of LuaJIT's VM and of lj_trace_ins(); 0 = unknown
// (a LuaJIT without a JIT compiler has neither, and nothing to protect).
std::atomic<uintptr_t> gVmStart{0};
std::atomic<uintptr_t> gTraceInsStart{0};

constexpr int kMaxFrames = 64;

struct Frames {
  uintptr_t start[kMaxFrames];
  int count = 0;
};

// The region of every frame from the caller up, until the first frame in code no module
// holds: the JIT's machine code, which libgcc cannot unwind through (it aborts). Nothing
// above compiled code matters here: an allocation made from a trace is not the compiler's.
_Unwind_Reason_Code collect(_Unwind_Context* ctx, void* arg) {
  auto* f = static_cast<Frames*>(arg);
  if (f->count == kMaxFrames) return _URC_END_OF_STACK;
  // The return address of this frame, where the unwinder goes next (x86-64, the only
  // target, as in lua-guard.cc: just below the canonical frame address).
  const uintptr_t ret = *reinterpret_cast<const uintptr_t*>(_Unwind_GetCFA(ctx) - sizeof(void*));
  f->start[f->count++] = _Unwind_GetRegionStart(ctx);
  Dl_info info;
  return dladdr(reinterpret_cast<void*>(ret), &info) ? _URC_NO_REASON : _URC_END_OF_STACK;
}

// jit.attach handler for "trace" events, run inside the trace compiler of the scratch
// state: (this module's frames) <- VM <- lj_vmevent_call <- ... <- trace_state <- VM
// (lj_vm_cpcall) <- lj_trace_ins.
int onTraceEvent(lua_State* L) {
  const char* what = lua_tostring(L, 1);
  if (!what || std::strcmp(what, "start") != 0 || gTraceInsStart.load()) return 0;
  Frames f;
  _Unwind_Backtrace(collect, &f);
  Dl_info self;
  if (!dladdr(reinterpret_cast<void*>(&onTraceEvent), &self)) return 0;
  int first = 0;  // the VM frame that called this handler
  for (Dl_info info; first < f.count; ++first) {
    if (!dladdr(reinterpret_cast<void*>(f.start[first]), &info) ||
        info.dli_fbase != self.dli_fbase) {
      break;
    }
  }
  if (first == f.count) return 0;
  const uintptr_t vm = f.start[first];
  for (int i = first + 1; i + 1 < f.count; ++i) {
    if (f.start[i] == vm) {
      gVmStart.store(vm);
      gTraceInsStart.store(f.start[i + 1]);
      break;
    }
  }
  return 0;
}

void learn() {
  lua_State* L = luaL_newstate();
  if (!L) return;
  luaL_openlibs(L);
  // jit.attach(onTraceEvent, "trace"), then a loop hot enough to be compiled. A build
  // without the JIT or without VM events leaves both addresses unknown.
  if (embedded::kLuajitProbe.load(L) == 0) {
    lua_getglobal(L, "jit");
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "attach");
      lua_remove(L, -2);
    }
    lua_pushcfunction(L, onTraceEvent);
    lua_pcall(L, 2, 0, 0);
  }
  lua_close(L);
}

}  // namespace

void learnLuaJitFrames() {
  static std::once_flag once;
  std::call_once(once, learn);
}

bool inLuaJitTraceCompiler() {
  const uintptr_t traceIns = gTraceInsStart.load(std::memory_order_relaxed);
  if (!traceIns) return false;
  const uintptr_t vm = gVmStart.load(std::memory_order_relaxed);
  Frames f;
  _Unwind_Backtrace(collect, &f);
  for (int i = 0; i + 1 < f.count; ++i) {
    if (f.start[i] == vm) return f.start[i + 1] == traceIns;
  }
  return false;
}

}  // namespace lapps
