// Rate limit for a log line that may repeat many times a second (accept failing at the
// descriptor limit, ...): the first occurrence is logged at once; later ones within the
// interval are only counted, and at the end of the interval one line carries the count:
// "accept failed: ... (repeated 37 times in the last 10 s)". While occurrences go on, that
// is one line per interval; once they stop, the count of the last interval still comes out.
// Pure and single-threaded: the owner calls flush() from a timer at the interval's end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lapps {

class RepeatedLog {
 public:
  static constexpr uint64_t kDefaultIntervalMs = 10000;

  explicit RepeatedLog(uint64_t intervalMs = kDefaultIntervalMs) : intervalMs_(intervalMs) {}

  uint64_t intervalMs() const { return intervalMs_; }

  // One occurrence of `message`. True: log it now and call flush() in intervalMs(). False:
  // counted, to be reported by flush().
  bool note(uint64_t nowMs, std::string_view message) {
    if (open_) {
      ++repeats_;
      last_.assign(message);
      return false;
    }
    open_ = true;
    since_ = nowMs;
    return true;
  }

  // End of the interval: the line reporting what was counted in it, or "" if nothing was
  // (the interval closes and the next occurrence is logged at once). A non-empty line
  // starts a new interval: call flush() again in intervalMs().
  std::string flush(uint64_t nowMs) {
    if (repeats_ == 0) {
      open_ = false;
      return {};
    }
    const uint64_t seconds = (nowMs - since_ + 500) / 1000;
    std::string line = last_ + " (repeated " + std::to_string(repeats_) +
                       (repeats_ == 1 ? " time" : " times") + " in the last " +
                       std::to_string(seconds) + " s)";
    repeats_ = 0;
    since_ = nowMs;
    return line;
  }

 private:
  const uint64_t intervalMs_;
  bool open_ = false;   // an interval runs: occurrences are counted, flush() is due
  uint64_t since_ = 0;  // start of the running interval
  uint64_t repeats_ = 0;
  std::string last_;  // the latest message counted (its details may vary)
};

}  // namespace lapps
