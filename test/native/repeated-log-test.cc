// Rate limit for repeated log lines: one line per interval, then one with the count.
#include <string>

#include "core/repeated-log.h"
#include "test.h"

using namespace lapps;

TEST("repeated log: first line at once, repeats counted and reported at the interval's end") {
  RepeatedLog r(10000);
  CHECK(r.note(1000, "accept failed: Too many open files"));
  // 37 more within the interval: only counted.
  for (int i = 0; i < 37; ++i) CHECK(!r.note(1100 + uint64_t(i) * 100, "accept failed: x"));
  CHECK_EQ(r.flush(11000), std::string("accept failed: x (repeated 37 times in the last 10 s)"));
  // A new interval started: still counted, one more line at its end.
  CHECK(!r.note(12000, "accept failed: y"));
  CHECK_EQ(r.flush(21000), std::string("accept failed: y (repeated 1 time in the last 10 s)"));
  // Nothing in this interval: it closes without a line; the next one is logged at once.
  CHECK_EQ(r.flush(31000), std::string());
  CHECK(r.note(40000, "accept failed: z"));
  CHECK(!r.note(40001, "accept failed: z"));
}
