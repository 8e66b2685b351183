// Gives the heap's free pages back to the system after a burst (docs/memory.md).
//
// glibc keeps what a burst freed: one arena per thread, arenas that shrink only from the
// top, and a dynamic mmap threshold that rises (up to 32 MiB) after a large block is freed,
// so later large blocks come from the arenas too. malloc_trim(0) returns every whole free
// page of every arena. It walks all free chunks (milliseconds on a fragmented heap), so it
// is tried only when a worker goes quiet after a busy spell, and done only when there is
// reason to think it gives back something: the resident size grew since the last trim, or
// at least that much memory was released since (bytes a spell moved through the network
// buffers, Lua garbage collected, mqr items taken: noteReleased).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// glibc's allocator is tuned and trimmed only where it is the allocator: under the
// sanitizers malloc is theirs, and glibc's malloc state is never set up by a first malloc on
// the main thread. A malloc_trim there initialises it on whichever thread calls first (a
// worker), which takes over the main arena without being counted in it; at that thread's
// exit glibc aborts ("a->attached_threads > 0").
#if defined(__GLIBC__) && !defined(LAPPS_SANITIZE)
#define LAPPS_GLIBC_MALLOC 1
#include <malloc.h>
#endif

namespace lapps {

class MemoryTrimmer {
 public:
  // Less growth than this since the last trim is not worth a walk of the heap.
  static constexpr uint64_t kMinGrowth = 8 << 20;

  // Blocks of at least this size are mapped on their own, so freeing one unmaps it.
  static constexpr int kMmapThreshold = 1 << 20;
  // A thread arena's free top above this is given back as soon as it is freed.
  static constexpr int kTrimThreshold = 2 << 20;

  // Before the workers start. Fixed thresholds instead of glibc's dynamic ones, which rise
  // after the first large free (to 32 MiB and 64 MiB) and then keep a burst's large blocks
  // in the arenas' tops, where malloc_trim cannot reach them in thread arenas. Left alone
  // when the user tunes malloc through the environment.
  static void configureAllocator() {
#ifdef LAPPS_GLIBC_MALLOC
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    if ((tunables && std::strstr(tunables, "glibc.malloc.")) ||
        std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_")) {
      return;
    }
    mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
    mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
#endif
  }

  // Any thread: `n` bytes of heap memory were freed (a hint, not an exact count).
  void noteReleased(uint64_t n) {
    released_.fetch_add(n, std::memory_order_relaxed);
  }

  // Any thread. Trims if the resident size grew by kMinGrowth since the last trim, or that
  // much was released since. Returns the bytes the trim gave back. (Workers that go quiet
  // together may each trim: each has released its own memory.)
  uint64_t trimIfWorthIt() {
    const uint64_t before = residentBytes();
    const uint64_t base = baseline_.load(std::memory_order_relaxed);
    if (before < base + kMinGrowth && released_.load(std::memory_order_relaxed) < kMinGrowth) {
      // Shrunk by itself (freed mappings): judge growth from here.
      if (before < base) baseline_.store(before, std::memory_order_relaxed);
      return 0;
    }
    released_.store(0, std::memory_order_relaxed);
#ifdef LAPPS_GLIBC_MALLOC
    malloc_trim(0);
#endif
    const uint64_t after = residentBytes();
    baseline_.store(after, std::memory_order_relaxed);
    return before > after ? before - after : 0;
  }

  // The process's resident set (/proc/self/statm), in bytes; 0 if it cannot be read.
  static uint64_t residentBytes() {
    int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[128];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    unsigned long long size = 0, resident = 0;
    if (std::sscanf(buf, "%llu %llu", &size, &resident) != 2) return 0;
    return uint64_t(resident) * uint64_t(::sysconf(_SC_PAGESIZE));
  }

 private:
  std::atomic<uint64_t> baseline_{0};
  std::atomic<uint64_t> released_{0};
};

}  // namespace lapps
