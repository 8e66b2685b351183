// The single way the data plane talks to the Node main thread: workers append control
// events (log lines, lifecycle) under a short lock and wake the main thread once per
// batch through a thread-safe function. Nothing on the data path waits for Node.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace lapps {

enum class LogLevel : uint8_t { Error, Warn, Info, Debug };

struct Event {
  enum class Kind : uint8_t { Log, Stopped };
  Kind kind = Kind::Log;
  LogLevel level = LogLevel::Info;
  std::string source;
  std::string message;
};

class EventChannel {
 public:
  // `wake` is called (from any thread) when the queue goes from empty to non-empty.
  explicit EventChannel(std::function<void()> wake) : wake_(std::move(wake)) {}

  void post(Event e) {
    bool wasEmpty;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      wasEmpty = events_.empty();
      events_.push_back(std::move(e));
    }
    if (wasEmpty) wake_();
  }

  void log(LogLevel level, std::string source, std::string message) {
    post(Event{Event::Kind::Log, level, std::move(source), std::move(message)});
  }

  // Main thread: takes everything queued so far.
  std::vector<Event> drain() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Event> out;
    out.swap(events_);
    return out;
  }

 private:
  std::function<void()> wake_;
  std::mutex mutex_;
  std::vector<Event> events_;
};

}  // namespace lapps
