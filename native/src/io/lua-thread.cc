#include "io/lua-thread.h"

#include <sys/mman.h>

#include <unistd.h>
#include <cstdio>

#include <algorithm>
#include <system_error>

namespace lapps {

namespace {

LuaStack findStack() {
  LuaStack s;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return s;
  void* addr = nullptr;
  size_t size = 0;
  if (pthread_attr_getstack(&attr, &addr, &size) == 0 && addr) {
    s.low = uintptr_t(addr);
    // A thread lapps did not start (the main thread, a test's) may have a smaller stack:
    // keep half of it.
    s.limit = s.low + std::min(kLuaStackReserve, size / 2);
  }
  pthread_attr_destroy(&attr);
  return s;
}

}  // namespace

const LuaStack& luaStack() {
  static thread_local const LuaStack stack = findStack();
  return stack;
}

void trimLuaStack() {
  const LuaStack& s = luaStack();
  if (!s.low) return;
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (s.low + page - 1) & ~(page - 1);
  // The caller's frame and whatever it calls next stay untouched.
  const uintptr_t end =
      (uintptr_t(__builtin_frame_address(0)) - (uintptr_t(256) << 10)) & ~(page - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

void LuaThread::start(const char* name, std::function<void()> fn) {
  fn_ = std::move(fn);
  std::snprintf(name_, sizeof name_, "%s", name);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kLuaThreadStackBytes);
  int rc = pthread_create(&thread_, &attr, &LuaThread::entry, this);
  pthread_attr_destroy(&attr);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "cannot start a Lua thread");
  started_ = true;
}

void LuaThread::join() {
  if (!started_) return;
  pthread_join(thread_, nullptr);
  started_ = false;
}

void* LuaThread::entry(void* self) {
  auto* t = static_cast<LuaThread*>(self);
  if (t->name_[0]) pthread_setname_np(pthread_self(), t->name_);
  t->fn_();
  return nullptr;
}

}  // namespace lapps
