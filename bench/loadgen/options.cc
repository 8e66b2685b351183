#include "options.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace loadgen {

const char* const kUsage =
    "usage: lapps-loadgen --mode echo|ramp|idle|fanout [--host 127.0.0.1] --port P\n"
    "         [--path /echo]"
    " [--concurrency C] [--sources A,B,...] [--timeout SEC] [--tls [--tls-resume]]\n"
    "  echo: --connections N --size S [--inflight K] [--text] [--duration SEC]\n"
    "        [--warmup SEC] [--raw] [--count M]\n"
    "  ramp: --connections N [--concurrency C]   (default C: 100)\n"
    "  idle: --connections N [--sources A,B,...] [--hold SEC]   (default C: 500)\n"
    "  fanout: --connections N (subscribers) --size S [--threads T] [--window K]\n"
    "        [--rate R] [--publisher client|server] [--lapps] [--raw] [--duration SEC]\n"
    "        [--warmup SEC]   (see fanout-mode.cc; prints {\"event\":\"window\",...} lines)\n"
    "--tls: wss, TLS 1.2+ with SNI localhost and ALPN http/1.1, certificate not verified,\n"
    "       a full handshake per connection unless --tls-resume (not with --raw).\n"
    "Prints one JSON object on stdout at the end; idle also prints\n"
    "{\"event\":\"ready\",\"opened\":N} once all connections are open, then holds them until\n"
    "--hold expires, stdin reaches EOF, or SIGTERM/SIGINT.\n";

namespace {

bool parseUint(const char* s, uint64_t max, uint64_t* out) {
  if (!*s || *s == '-' || *s == '+') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno || *end || v > max) return false;
  *out = v;
  return true;
}

bool parseSeconds(const char* s, double* out) {
  if (!*s) return false;
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (*end || !std::isfinite(v) || v < 0 || v > 1e6) return false;
  *out = v;
  return true;
}

bool parseSources(std::string_view list, std::vector<in_addr>* out) {
  out->clear();
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string item(list.substr(0, comma));
    in_addr a;
    if (inet_pton(AF_INET, item.c_str(), &a) != 1) return false;
    out->push_back(a);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return !out->empty();
}

// Which modes accept a flag: bit 0 echo, bit 1 ramp, bit 2 idle, bit 3 fanout.
struct Flag {
  std::string_view name;
  unsigned modes;
  bool takesValue;
};
constexpr Flag kFlags[] = {
    {"--mode", 15, true},     {"--host", 15, true},        {"--port", 15, true},
    {"--path", 15, true},     {"--connections", 15, true}, {"--concurrency", 15, true},
    {"--sources", 15, true},  {"--timeout", 15, true},     {"--size", 9, true},
    {"--inflight", 1, true},  {"--text", 1, false},        {"--raw", 9, false},
    {"--duration", 9, true},  {"--warmup", 9, true},       {"--hold", 4, true},
    {"--count", 1, true},     {"--tls", 7, false},         {"--tls-resume", 7, false},
    {"--threads", 8, true},   {"--window", 8, true},       {"--rate", 8, true},
    {"--publisher", 8, true}, {"--lapps", 8, false},
};
}  // namespace

std::string parseOptions(int argc, char** argv, Options* o) {
  bool haveMode = false, havePort = false, haveConnections = false, haveSize = false;
  std::vector<const Flag*> given;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return kUsage;
    const Flag* flag = nullptr;
    for (const Flag& f : kFlags) {
      if (f.name == arg) flag = &f;
    }
    if (!flag) return "unknown option " + std::string(arg);
    const char* v = nullptr;
    if (flag->takesValue) {
      if (i + 1 >= argc) return std::string(arg) + " needs a value";
      v = argv[++i];
    }
    given.push_back(flag);
    uint64_t n = 0;
    bool ok = true;
    if (arg == "--mode") {
      std::string_view m = v;
      haveMode = true;
      if (m == "echo") {
        o->mode = Mode::kEcho;
      } else if (m == "ramp") {
        o->mode = Mode::kRamp;
      } else if (m == "idle") {
        o->mode = Mode::kIdle;
      } else if (m == "fanout") {
        o->mode = Mode::kFanout;
      } else {
        return "--mode must be echo, ramp, idle or fanout";
      }
    } else if (arg == "--host") {
      o->host = v;
    } else if (arg == "--port") {
      ok = parseUint(v, 65535, &n) && n > 0;
      o->port = unsigned(n);
      havePort = true;
    } else if (arg == "--path") {
      o->path = v;
      ok = !o->path.empty() && o->path[0] == '/' && o->path.find_first_of(" \r\n") == o->path.npos;
    } else if (arg == "--connections") {
      ok = parseUint(v, 10000000, &n) && n > 0;
      o->connections = uint32_t(n);
      haveConnections = true;
    } else if (arg == "--concurrency") {
      ok = parseUint(v, 10000000, &n) && n > 0;
      o->concurrency = uint32_t(n);
    } else if (arg == "--sources") {
      ok = parseSources(v, &o->sources);
    } else if (arg == "--timeout") {
      ok = parseSeconds(v, &o->timeout) && o->timeout > 0;
    } else if (arg == "--size") {
      ok = parseUint(v, uint64_t(64) << 20, &n);
      o->size = uint32_t(n);
      haveSize = true;
    } else if (arg == "--inflight") {
      ok = parseUint(v, 65536, &n) && n > 0;
      o->inflight = uint32_t(n);
    } else if (arg == "--text") {
      o->text = true;
    } else if (arg == "--raw") {
      o->raw = true;
    } else if (arg == "--duration") {
      ok = parseSeconds(v, &o->duration) && o->duration > 0;
    } else if (arg == "--warmup") {
      ok = parseSeconds(v, &o->warmup);
    } else if (arg == "--count") {
      ok = parseUint(v, uint64_t(1) << 40, &o->count) && o->count > 0;
    } else if (arg == "--hold") {
      ok = parseSeconds(v, &o->hold);
    } else if (arg == "--threads") {
      ok = parseUint(v, 64, &n) && n > 0;
      o->threads = uint32_t(n);
    } else if (arg == "--window") {
      ok = parseUint(v, 4096, &n) && n > 0;
      o->window = uint32_t(n);
    } else if (arg == "--rate") {
      ok = parseSeconds(v, &o->rate) && o->rate > 0;
    } else if (arg == "--publisher") {
      std::string_view p = v;
      ok = p == "client" || p == "server";
      o->publisher = p == "server" ? Publisher::kServer : Publisher::kClient;
    } else if (arg == "--lapps") {
      o->lappsProtocol = true;
    } else if (arg == "--tls") {
      o->tls = true;
    } else if (arg == "--tls-resume") {
      o->tlsResume = true;
    }
    if (!ok) return "bad value for " + std::string(arg) + ": " + v;
  }
  if (!haveMode) return "--mode is required";
  if (!havePort) return "--port is required";
  if (!haveConnections) return "--connections is required";
  unsigned modeBit = o->mode == Mode::kEcho   ? 1
                     : o->mode == Mode::kRamp ? 2
                     : o->mode == Mode::kIdle ? 4
                                              : 8;
  for (const Flag* f : given) {
    if (!(f->modes & modeBit)) return std::string(f->name) + " does not apply to this mode";
  }
  if (o->mode == Mode::kEcho && !haveSize) return "--size is required in echo mode";
  if (o->mode == Mode::kFanout) {
    if (!haveSize) return "--size is required in fanout mode";
    // The payload starts with the sequence number and the timestamp (fanout-payload.h).
    if (o->size < 16) return "--size must be at least 16 in fanout mode";
    if (o->raw && o->lappsProtocol) return "--raw and --lapps do not combine";
    if (o->threads > o->connections) o->threads = o->connections;
  }
  if (o->tlsResume && !o->tls) return "--tls-resume needs --tls";
  // --raw drives the raw TCP echo, which has no TLS listener.
  if (o->raw && o->tls) return "--raw and --tls do not combine";
  if (o->concurrency == 0) o->concurrency = o->mode == Mode::kRamp ? 100 : 500;
  o->server.sin_family = AF_INET;
  o->server.sin_port = htons(uint16_t(o->port));
  if (inet_pton(AF_INET, o->host.c_str(), &o->server.sin_addr) != 1) {
    return "--host must be an IPv4 address, e.g. 127.0.0.1";
  }
  return "";
}

}  // namespace loadgen
