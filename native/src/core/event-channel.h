// The single way the data plane talks to the Node main thread: workers append control
// events (log lines, lifecycle) under a short lock and wake the main thread once per
// batch through a thread-safe function. Nothing on the data path waits for Node.
//
// The queue is bounded: when the main thread does not keep up (busy, or blocked writing
// to a stuck stderr), log lines over the bound are dropped and counted by level instead
// of growing memory; the next drain() hands the counts over with the batch.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace lapps {

enum class LogLevel : uint8_t { Error, Warn, Info, Debug };

// A structured value of a log line (JSON logs show it as a field, text logs as key=value).
struct LogField {
  const char* key;  // a static string
  std::string text;
  int64_t number = 0;
  bool isNumber = false;
};

struct Event {
  enum class Kind : uint8_t { Log, Stopped };
  Kind kind = Kind::Log;
  LogLevel level = LogLevel::Info;
  std::string source;
  std::string message;
  std::vector<LogField> fields{};  // usually none
};

class EventChannel {
 public:
  // Bytes of queued log lines (text plus bookkeeping) beyond which new lines are dropped.
  static constexpr size_t kDefaultMaxQueuedBytes = size_t(4) << 20;

  // Log lines dropped since the previous drain(), by LogLevel.
  using DropCounts = std::array<uint64_t, 4>;

  struct Batch {
    std::vector<Event> events;
    DropCounts dropped{};
  };

  // `wake` is called (from any thread) when the queue goes from empty to non-empty.
  explicit EventChannel(std::function<void()> wake, size_t maxQueuedBytes = kDefaultMaxQueuedBytes)
      : wake_(std::move(wake)), maxQueuedBytes_(maxQueuedBytes) {}

  void post(Event e) {
    size_t cost = sizeof(Event) + e.source.size() + e.message.size();
    for (const LogField& f : e.fields) cost += sizeof(LogField) + f.text.size();
    bool wasEmpty;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // Lifecycle events are never dropped: a lost Stopped would hang stop().
      if (e.kind == Event::Kind::Log && queuedBytes_ + cost > maxQueuedBytes_) {
        ++dropped_[size_t(e.level) & 3];
        return;  // the queue is not empty, so the main thread is already woken
      }
      queuedBytes_ += cost;
      wasEmpty = events_.empty();
      events_.push_back(std::move(e));
    }
    if (wasEmpty) wake_();
  }

  void log(LogLevel level, std::string source, std::string message) {
    post(Event{Event::Kind::Log, level, std::move(source), std::move(message)});
  }

  // Main thread: takes everything queued so far and the drops since the last call.
  Batch drain() {
    std::lock_guard<std::mutex> lock(mutex_);
    Batch out;
    out.events.swap(events_);
    out.dropped = dropped_;
    dropped_ = {};
    queuedBytes_ = 0;
    return out;
  }

 private:
  std::function<void()> wake_;
  const size_t maxQueuedBytes_;
  std::mutex mutex_;
  std::vector<Event> events_;
  size_t queuedBytes_ = 0;
  DropCounts dropped_{};
};

}  // namespace lapps
