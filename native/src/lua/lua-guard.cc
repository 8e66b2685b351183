#include "lua/lua-guard.h"

#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>

#include <chrono>

#include "io/clock.h"

namespace lapps {

namespace {

// Executable ranges of mapped files: the interrupted code may be left by a jump only if it
// is in none of them (JIT-compiled code) or in LuaJIT's own. Rebuilt by the watchdog before
// it signals (a module may have been loaded since); read by the signal handler.
constexpr int kMaxRanges = 512;
struct Range {
  uintptr_t begin, end;
  bool luajit;
};
Range gRanges[kMaxRanges];
std::atomic<int> gRangeCount{0};

int collectRange(dl_phdr_info* info, size_t, void* data) {
  int& n = *static_cast<int*>(data);
  const char* name = info->dlpi_name ? info->dlpi_name : "";
  bool luajit = strstr(name, "libluajit") != nullptr;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X) || n >= kMaxRanges) continue;
    uintptr_t begin = info->dlpi_addr + ph.p_vaddr;
    gRanges[n++] = Range{begin, begin + ph.p_memsz, luajit};
  }
  return 0;
}

void refreshRanges() {
  gRangeCount.store(0, std::memory_order_release);
  int n = 0;
  dl_iterate_phdr(collectRange, &n);
  gRangeCount.store(n, std::memory_order_release);
}

bool jumpableAt(uintptr_t pc) {
  int n = gRangeCount.load(std::memory_order_acquire);
  if (n == 0) return false;  // being rebuilt: try again later
  for (int i = 0; i < n; ++i) {
    if (pc >= gRanges[i].begin && pc < gRanges[i].end) return gRanges[i].luajit;
  }
  return true;  // anonymous executable memory: LuaJIT's machine code
}

int stopSignal() {
  return SIGRTMIN + 6;
}

void onStopSignal(int, siginfo_t*, void* context) {
  LuaGuardThread& g = luaGuardThread();
  if (!g.armed) return;
  auto* uc = static_cast<ucontext_t*>(context);
  uintptr_t pc = uintptr_t(uc->uc_mcontext.gregs[REG_RIP]);
  if (!jumpableAt(pc)) return;
  g.armed = 0;
  g.depth = 0;
  siglongjmp(g.jmp, 1);
}

}  // namespace

LuaGuardThread& luaGuardThread() {
  static thread_local LuaGuardThread t;
  return t;
}

void installLuaGuardSignal() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = onStopSignal;
    // SA_NODEFER: the handler may leave by siglongjmp (without restoring a signal mask, which
    // would cost a system call on every entry into Lua), so the signal must not be blocked
    // while it runs.
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(stopSignal(), &sa, nullptr);
    refreshRanges();
  });
}

uint64_t Watchdog::nowMs() {
  return monotonicMs();  // the clock of the loops' deadlines
}

Watchdog::Watchdog() {
  installLuaGuardSignal();
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  stop_ = true;
  thread_.join();
}

void Watchdog::add(LuaDeadline* d) {
  std::lock_guard<std::mutex> lock(mutex_);
  watched_.push_back(d);
}

void Watchdog::remove(LuaDeadline* d) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::erase(watched_, d);
}

void Watchdog::run() {
  pthread_setname_np(pthread_self(), "lapps-watchdog");  // for top -H and perf
  bool refreshed = false;
  while (!stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    uint64_t now = nowMs();
    std::lock_guard<std::mutex> lock(mutex_);
    bool any = false;
    for (LuaDeadline* d : watched_) {
      uint64_t deadline = d->deadlineMs.load(std::memory_order_relaxed);
      if (deadline == 0 || deadline == kInLuaNoDeadline) continue;
      uint32_t calls = d->calls.load(std::memory_order_relaxed);
      if (calls != d->seenCalls) {
        // Another call began since the last tick: it started at most one tick ago.
        d->seenCalls = calls;
        d->callSeenMs = now;
      }
      if (now < deadline || now < d->callSeenMs + d->limitMs) continue;
      any = true;
      if (!refreshed) {
        refreshRanges();  // once per overrun episode: modules may have been loaded
        refreshed = true;
      }
      pthread_kill(d->thread, stopSignal());
    }
    if (!any) refreshed = false;
  }
}

}  // namespace lapps
