// LuaJIT's trace compiler, recognised on the C stack.
//
// An allocation made by the trace compiler must never be refused by a memory limit: LuaJIT
// (2.1-20230119, the Debian and OpenResty builds; upstream still in 2024) cannot unwind an
// out-of-memory error raised while it stitches a trace around a call to a C function.
// recff_stitch() moves the coroutine's Lua stack up to insert a continuation frame, then
// allocates IR constants and a snapshot; an error there is caught by the recorder's own
// protected call with the stack still moved, and the interpreter carries on with a frame
// base that points at the wrong slot: the next return jumps to a garbage address. The
// compiler's memory is bounded by its own parameters (maxrecord, maxsnap, maxirconst), so
// letting it through costs little.
//
// There is no API that says "the compiler is running"; the C stack does. Every run of the
// compiler is lj_trace_ins() -> lj_vm_cpcall() (the VM's assembly) -> trace_state(). The
// VM's code is one unwind region, and lj_trace_ins() is learned once per process from a
// `trace` VM event fired inside the compiler in a scratch state. An allocation is the
// compiler's if the nearest VM frame above it was entered from lj_trace_ins(); anything
// else (the interpreter, library functions, C functions, a __gc finalizer, a VM event
// handler's own Lua code, compiled code) reaches a VM frame entered from elsewhere first,
// or none at all, and may be refused as before.
#pragma once

namespace lapps {

// Once per process, before Lua states run (idempotent, thread-safe).
void learnLuaJitFrames();

// For an allocator about to refuse an allocation: is the trace compiler making it? Costs an
// unwind of the C stack (microseconds): call it only on the refusal path.
bool inLuaJitTraceCompiler();

}  // namespace lapps
