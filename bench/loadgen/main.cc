// lapps-loadgen: the one WebSocket client every echo server in the benchmark is driven
// with. epoll, one thread (fanout: --threads); see options.cc for the command line and the
// *-mode.cc files for what each mode measures.
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "modes.h"
#include "options.h"

namespace {

// Raises RLIMIT_NOFILE as far as allowed: as root to 2^20 (the kernel's default
// fs.nr_open), otherwise the soft limit up to the hard one.
void raiseFdLimit(uint64_t wanted) {
  rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  rlimit big{rlim_t(1) << 20, rlim_t(1) << 20};
  if (lim.rlim_max < big.rlim_max && setrlimit(RLIMIT_NOFILE, &big) == 0) {
    lim = big;
  } else if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < wanted) {
    std::fprintf(stderr,
                 "lapps-loadgen: warning: RLIMIT_NOFILE is %llu, below the %llu descriptors "
                 "needed; the excess connections will fail\n",
                 static_cast<unsigned long long>(lim.rlim_cur),
                 static_cast<unsigned long long>(wanted));
  }
}

}  // namespace

int main(int argc, char** argv) {
  loadgen::Options o;
  std::string err = loadgen::parseOptions(argc, argv, &o);
  if (err == loadgen::kUsage) {
    std::fputs(loadgen::kUsage, stdout);
    return 0;
  }
  if (!err.empty()) {
    std::fprintf(stderr, "lapps-loadgen: %s\n%s", err.c_str(), loadgen::kUsage);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // a dead peer is an error to count, not a reason to die
  raiseFdLimit(uint64_t(o.connections) + 16);
  switch (o.mode) {
    case loadgen::Mode::kEcho:
      return loadgen::runEcho(o);
    case loadgen::Mode::kRamp:
      return loadgen::runRamp(o);
    case loadgen::Mode::kIdle:
      return loadgen::runIdle(o);
    case loadgen::Mode::kFanout:
      return loadgen::runFanout(o);
  }
  return 2;
}
