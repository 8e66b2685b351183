/* Counts malloc-family calls per thread, for test/perf/allocations.test.ts. Preloaded into a
 * lapps process (LD_PRELOAD), it forwards every call to glibc's own allocator and counts it
 * on the calling thread. Node resets every signal disposition at start, so the counts are
 * asked for through files instead: with LAPPS_ALLOC_COUNT=<base> set, a thread of this
 * library looks for <base>.req every 10 ms; when it appears, it is removed and one line per
 * thread, "<tid> <allocations> <frees>", is written to <base>.out (renamed into place, so a
 * reader never sees half of it). Needs glibc (__libc_malloc and friends). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern void* __libc_malloc(size_t size);
extern void* __libc_calloc(size_t n, size_t size);
extern void* __libc_realloc(void* p, size_t size);
extern void* __libc_memalign(size_t align, size_t size);
extern void __libc_free(void* p);

enum { kSlots = 4096 };

struct counts {
  _Atomic long tid;
  _Atomic unsigned long allocs;
  _Atomic unsigned long frees;
};

static struct counts slots[kSlots];
static _Atomic int used;
static __thread struct counts* mine __attribute__((tls_model("initial-exec")));

static struct counts* current(void) {
  if (!mine) {
    int i = atomic_fetch_add_explicit(&used, 1, memory_order_relaxed);
    /* Past the last slot, every further thread shares it (its tid says which came first). */
    if (i >= kSlots) i = kSlots - 1;
    mine = &slots[i];
    long expected = 0;
    atomic_compare_exchange_strong(&mine->tid, &expected, (long)syscall(SYS_gettid));
  }
  return mine;
}

/* One writer per slot: a relaxed load and store is enough and costs no locked instruction. */
static void bump(_Atomic unsigned long* c) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                        memory_order_relaxed);
}

void* malloc(size_t size) {
  bump(&current()->allocs);
  return __libc_malloc(size);
}

void* calloc(size_t n, size_t size) {
  bump(&current()->allocs);
  return __libc_calloc(n, size);
}

void* realloc(void* p, size_t size) {
  struct counts* c = current();
  if (!p) {
    bump(&c->allocs);
  } else if (size == 0) {
    bump(&c->frees);
  } else {
    /* A move is an allocation and a free; growing in place is neither, but we cannot tell. */
    bump(&c->allocs);
    bump(&c->frees);
  }
  return __libc_realloc(p, size);
}

void free(void* p) {
  if (p) bump(&current()->frees);
  __libc_free(p);
}

void* memalign(size_t align, size_t size) {
  bump(&current()->allocs);
  return __libc_memalign(align, size);
}

void* aligned_alloc(size_t align, size_t size) {
  bump(&current()->allocs);
  return __libc_memalign(align, size);
}

int posix_memalign(void** out, size_t align, size_t size) {
  if (align < sizeof(void*) || (align & (align - 1)) != 0) return EINVAL;
  bump(&current()->allocs);
  void* p = __libc_memalign(align, size);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

static char base[512];

static void dump(void) {
  char tmp[600], out[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", base);
  snprintf(out, sizeof out, "%s.out", base);
  FILE* f = fopen(tmp, "w");
  if (!f) return;
  int n = atomic_load(&used);
  if (n > kSlots) n = kSlots;
  for (int i = 0; i < n; i++) {
    fprintf(f, "%ld %lu %lu\n", atomic_load(&slots[i].tid), atomic_load(&slots[i].allocs),
            atomic_load(&slots[i].frees));
  }
  fclose(f);
  rename(tmp, out);
}

static void* watch(void* arg) {
  (void)arg;
  char req[600];
  snprintf(req, sizeof req, "%s.req", base);
  const struct timespec tick = {0, 10 * 1000 * 1000};
  for (;;) {
    nanosleep(&tick, NULL);
    if (unlink(req) == 0) dump();
  }
  return NULL;
}

__attribute__((constructor)) static void start(void) {
  const char* b = getenv("LAPPS_ALLOC_COUNT");
  if (!b || !*b || strlen(b) >= sizeof base) return;
  strcpy(base, b);
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_create(&t, &attr, watch, NULL);
  pthread_attr_destroy(&attr);
}
