// The control-event queue to the main thread: bounded, drops counted by level.
#include <string>

#include "core/event-channel.h"
#include "test.h"

using namespace lapps;

TEST("event channel: log lines over the byte bound are dropped and counted by level") {
  int wakes = 0;
  const size_t line = 1000;
  EventChannel ch([&] { ++wakes; }, 10 * (sizeof(Event) + line + 1));
  for (int i = 0; i < 100; ++i) {
    ch.log(i % 2 ? LogLevel::Warn : LogLevel::Info, "w", std::string(line, 'x'));
  }
  CHECK_EQ(wakes, 1);
  ch.post(Event{Event::Kind::Stopped, LogLevel::Info, {}, {}});  // never dropped
  EventChannel::Batch b = ch.drain();
  CHECK_EQ(b.events.size(), size_t(11));
  CHECK(b.events.back().kind == Event::Kind::Stopped);
  CHECK_EQ(b.dropped[size_t(LogLevel::Warn)] + b.dropped[size_t(LogLevel::Info)], uint64_t(90));
  CHECK_EQ(b.dropped[size_t(LogLevel::Warn)], uint64_t(45));
  CHECK_EQ(b.dropped[size_t(LogLevel::Error)], uint64_t(0));

  // Drained: room again, and the counts start over.
  ch.log(LogLevel::Error, "w", "after");
  b = ch.drain();
  CHECK_EQ(b.events.size(), size_t(1));
  CHECK_EQ(b.events[0].message, std::string("after"));
  CHECK_EQ(b.dropped[size_t(LogLevel::Warn)], uint64_t(0));
  CHECK_EQ(wakes, 2);
}
