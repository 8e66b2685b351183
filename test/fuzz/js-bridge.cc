// libFuzzer bridge for JavaScript fuzz targets (test/fuzz/js/<target>.mjs), built as
// lapps_fuzz_<target> with -DLAPPS_FUZZ=ON and clang (npm run fuzz -- --targets config).
//
// libFuzzer cannot see JavaScript coverage, so this executable brings it in. It registers its
// own array of 8-bit counters (and a PC table of the same size, so that libFuzzer's "cov:"
// figure counts them) as if it were an instrumented module, and runs each input in one
// persistent Node process, `node test/fuzz/js/host.mjs <target> <counters>`, started on the
// first input. The host runs the input through the target under V8's precise block coverage
// and replies with the counter indices (hashes of script, block range) the input reached and
// their execution counts; the bridge writes those into the counters, so libFuzzer's corpus
// evolves by JavaScript coverage. The bridge code itself is not coverage-instrumented: no
// other counters add noise.
//
// Protocol (the host's fd 3 reads requests, its fd 4 writes replies; integers are u32 LE):
//   request:  length, input bytes
//   reply:    status, length, body
//     kReady     once at start; body: nothing
//     kCoverage  body: (index, count) pairs
//     kFinding   the target threw something other than its expected error, or an invariant
//                broke; body: the JavaScript stack. The bridge prints it and aborts, so
//                libFuzzer saves the input as a crash.
// The host dying or taking longer than LAPPS_FUZZ_JS_TIMEOUT_MS (default 10000) on one
// input is a finding too. LAPPS_FUZZ_NODE names the node binary (default: node on PATH).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifndef LAPPS_FUZZ_JS_TARGET
#error "define LAPPS_FUZZ_JS_TARGET (the name of test/fuzz/js/<target>.mjs)"
#endif
#ifndef LAPPS_SOURCE_DIR
#error "define LAPPS_SOURCE_DIR (the repository root)"
#endif

extern "C" void __sanitizer_cov_8bit_counters_init(uint8_t* begin, uint8_t* end);
extern "C" void __sanitizer_cov_pcs_init(const uintptr_t* begin, const uintptr_t* end);

namespace {

// 64 Ki counters: a few thousand JavaScript blocks hash into them with few collisions.
constexpr uint32_t kCounters = 1u << 16;
alignas(4096) uint8_t counters[kCounters];

// libFuzzer's PCTableEntry: a PC and flags (bit 0: function entry). The PCs are fake (index
// + 1); they are only ever printed. No entry is a function entry, so libFuzzer does not try
// to print new functions.
struct PcEntry {
  uintptr_t pc;
  uintptr_t flags;
};
PcEntry pcTable[kCounters];

enum Status : uint32_t { kReady = 0, kCoverage = 1, kFinding = 2 };

struct Host {
  pid_t pid = -1;
  int requests = -1;  // write end
  int replies = -1;   // read end
};
Host host;
int timeoutMs = 10000;

// Asks the host to exit (end of requests) so that it removes its temporary files, waits a
// moment for its end of the reply pipe to close, then kills it.
void stopHost() {
  if (host.pid <= 0) return;
  close(host.requests);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{host.replies, POLLIN, 0};
    if (left.count() <= 0 || poll(&pfd, 1, int(left.count())) <= 0) break;
    char sink[4096];
    if (read(host.replies, sink, sizeof sink) <= 0) break;  // EOF: the host is exiting
  }
  kill(host.pid, SIGKILL);
  waitpid(host.pid, nullptr, 0);
  close(host.replies);
  host = {};
}

[[noreturn]] void finding(const char* fmt, ...) {
  std::fprintf(stderr, "==lapps_fuzz_" LAPPS_FUZZ_JS_TARGET "== ");
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "\n");
  stopHost();
  std::abort();  // libFuzzer's deadly-signal handler saves the input
}

// Not the input's fault (the host cannot start): stop without a crash artifact.
[[noreturn]] void setupError(const char* what) {
  std::fprintf(stderr, "lapps_fuzz_" LAPPS_FUZZ_JS_TARGET ": %s\n", what);
  stopHost();
  std::_Exit(1);
}

bool writeAll(int fd, const void* data, size_t size) {
  auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= size_t(n);
  }
  return true;
}

enum class ReadResult { kOk, kEof, kTimeout };

ReadResult readAll(int fd, void* data, size_t size,
                   std::chrono::steady_clock::time_point deadline) {
  auto* p = static_cast<uint8_t*>(data);
  while (size > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return ReadResult::kTimeout;
    pollfd pfd{fd, POLLIN, 0};
    int r = poll(&pfd, 1, int(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return ReadResult::kTimeout;
    ssize_t n = read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ReadResult::kEof;
    p += n;
    size -= size_t(n);
  }
  return ReadResult::kOk;
}

std::string hostExitStatus() {
  int status = 0;
  if (host.pid <= 0 || waitpid(host.pid, &status, 0) != host.pid) return "is gone";
  host.pid = -1;
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

// A pipe whose ends are above the descriptors the child is given (3, 4), so dup2 onto them
// cannot collide; close-on-exec, so only the dup2 copies reach node.
void highPipe(int ends[2]) {
  int raw[2];
  if (pipe2(raw, O_CLOEXEC) != 0) setupError("pipe2 failed");
  for (int i = 0; i < 2; ++i) {
    ends[i] = fcntl(raw[i], F_DUPFD_CLOEXEC, 10);
    close(raw[i]);
    if (ends[i] < 0) setupError("fcntl(F_DUPFD_CLOEXEC) failed");
  }
}

struct Reply {
  uint32_t status = 0;
  std::vector<uint8_t> body;
};

// Reads one reply; on EOF or timeout `what` says what the host was doing.
Reply readReply(int timeout, const char* what) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout);
  uint32_t header[2];
  Reply reply;
  ReadResult r = readAll(host.replies, header, sizeof header, deadline);
  if (r == ReadResult::kOk) {
    reply.status = header[0];
    reply.body.resize(header[1]);
    r = readAll(host.replies, reply.body.data(), reply.body.size(), deadline);
  }
  if (r == ReadResult::kTimeout) {
    finding("the node host did not answer within %d ms %s (a hang)", timeout, what);
  }
  if (r == ReadResult::kEof) {
    std::string how = hostExitStatus();
    finding("the node host %s %s", how.c_str(), what);
  }
  return reply;
}

// `name` itself if it has a slash, else its first executable match on PATH; resolved before
// fork because execvp is not async-signal-safe.
std::string findExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* env = std::getenv("PATH");
  std::string dirs = env ? env : "/usr/local/bin:/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = std::min(dirs.find(':', start), dirs.size());
    std::string dir = dirs.substr(start, end - start);
    std::string file = (dir.empty() ? "." : dir) + "/" + name;
    if (access(file.c_str(), X_OK) == 0) return file;
    start = end + 1;
  }
  return name;
}

void startHost() {
  const char* env = std::getenv("LAPPS_FUZZ_NODE");
  std::string node = findExecutable(env != nullptr && *env != '\0' ? env : "node");
  std::string script = LAPPS_SOURCE_DIR "/test/fuzz/js/host.mjs";
  std::string size = std::to_string(kCounters);
  const char* argv[] = {node.c_str(), script.c_str(), LAPPS_FUZZ_JS_TARGET, size.c_str(), nullptr};
  int toHost[2];
  int fromHost[2];
  highPipe(toHost);
  highPipe(fromHost);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) setupError("fork failed");
  if (pid == 0) {
    // Only async-signal-safe calls here. The host must not outlive us (a hung host would
    // spin on after libFuzzer exits).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (dup2(toHost[0], 3) < 0 || dup2(fromHost[1], 4) < 0) _exit(127);
    execv(node.c_str(), const_cast<char* const*>(argv));
    _exit(127);
  }
  close(toHost[0]);
  close(fromHost[1]);
  host = {pid, toHost[1], fromHost[0]};
  // Loading the code under test and warming it up takes a while on a loaded machine.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  uint32_t header[2];
  ReadResult r = readAll(host.replies, header, sizeof header, deadline);
  if (r == ReadResult::kOk && header[0] == kReady && header[1] == 0) return;
  std::string what = "the node host (" + script + ") did not start: ";
  if (r == ReadResult::kTimeout) {
    what += "no answer within 120 s";
  } else if (r == ReadResult::kEof) {
    what += "it " + hostExitStatus();
  } else {
    what += "it sent something else than the ready message";
  }
  setupError(what.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  for (uint32_t i = 0; i < kCounters; ++i) pcTable[i] = {uintptr_t(i) + 1, 0};
  __sanitizer_cov_8bit_counters_init(counters, counters + kCounters);
  __sanitizer_cov_pcs_init(reinterpret_cast<const uintptr_t*>(pcTable),
                           reinterpret_cast<const uintptr_t*>(pcTable + kCounters));
  if (const char* t = std::getenv("LAPPS_FUZZ_JS_TIMEOUT_MS")) timeoutMs = std::atoi(t);
  if (timeoutMs <= 0) timeoutMs = 10000;
  std::atexit(stopHost);
  // A host that dies while we write must not kill us with SIGPIPE before we can report it.
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Started lazily: libFuzzer's outer -merge=1 process never runs an input and needs none.
  if (host.pid < 0) startHost();
  uint32_t length = uint32_t(size);
  if (!writeAll(host.requests, &length, sizeof length) || !writeAll(host.requests, data, size)) {
    std::string how = hostExitStatus();
    finding("the node host %s before taking the input", how.c_str());
  }
  Reply reply = readReply(timeoutMs, "running the input");
  if (reply.status == kFinding) {
    std::string stack(reply.body.begin(), reply.body.end());
    finding("JavaScript finding in target \"%s\":\n%s", LAPPS_FUZZ_JS_TARGET, stack.c_str());
  }
  if (reply.status != kCoverage || reply.body.size() % 8 != 0) {
    finding("protocol error: reply status %u with %zu bytes", reply.status, reply.body.size());
  }
  for (size_t off = 0; off < reply.body.size(); off += 8) {
    uint32_t pair[2];
    std::memcpy(pair, reply.body.data() + off, sizeof pair);
    uint8_t& c = counters[pair[0] % kCounters];
    c = uint8_t(std::min<uint32_t>(255, uint32_t(c) + std::min<uint32_t>(pair[1], 255)));
  }
  return 0;
}
