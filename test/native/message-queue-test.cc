// mqr queues (core/message-queue.h): the ring, batches and what they give back, the bounds
// with batches out, and who is woken when.
#include "core/message-queue.h"

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "test.h"

using namespace lapps;

namespace {

// A host that only records what is posted to it (nothing here runs a loop).
class RecordingHost final : public Host {
 public:
  uint64_t nowMs() const override { return 0; }
  uint64_t addTimer(uint64_t, std::function<void()>) override { return 1; }
  bool cancelTimer(uint64_t) override { return false; }
  void post(std::function<void()> fn) override { posted.push_back(std::move(fn)); }
  void watch(int, uint32_t, IoHandler*) override {}
  void unwatch(int) override {}
  std::vector<std::function<void()>> posted;
};

bool post(MessageQueue& q, const std::string& s) {
  return q.post(s.data(), s.size(), nullptr, nullptr, nullptr) == MessageQueue::PostResult::Posted;
}

std::string popText(QueueBatch& b) {
  MessageQueue::Item it = b.pop();
  std::string s(it.data(), it.size);
  it.release();
  return s;
}

}  // namespace

TEST("mqr queue: small items inline, large ones in their own block, all in order") {
  MessageQueue q("q", 100, 1 << 20, nullptr);
  const std::string big(1000, 'b');
  CHECK(post(q, "one"));
  CHECK(post(q, big));
  CHECK(post(q, std::string(48, 'i')));  // exactly kInlineBytes
  QueueBatch b(&q);
  CHECK_EQ(q.take(b, 10, nullptr, nullptr, nullptr), size_t(2));  // half of three, rounded up
  // What the batch holds beyond the item handed out at once still counts.
  CHECK_EQ(q.size(), size_t(2));
  CHECK_EQ(popText(b), std::string("one"));
  CHECK_EQ(popText(b), big);
  CHECK(b.empty());
  CHECK_EQ(q.take(b, 10, nullptr, nullptr, nullptr), size_t(1));
  CHECK_EQ(popText(b), std::string(48, 'i'));
  CHECK_EQ(q.size(), size_t(0));
  CHECK_EQ(q.bytes(), size_t(0));
}

TEST("mqr queue: a batch destroyed with items left gives them back to the front, in order") {
  MessageQueue q("q", 1000, 1 << 20, nullptr);
  for (int i = 0; i < 200; ++i) CHECK(post(q, "item " + std::to_string(i)));
  {
    QueueBatch b(&q);
    CHECK_EQ(q.take(b, MessageQueue::kBatchItems, nullptr, nullptr, nullptr),
             MessageQueue::kBatchItems);
    CHECK_EQ(popText(b), std::string("item 0"));
    CHECK_EQ(popText(b), std::string("item 1"));
    CHECK(post(q, "late"));  // posted while the batch is out
  }
  CHECK_EQ(q.size(), size_t(199));
  QueueBatch c(&q);
  std::vector<std::string> all;
  while (q.take(c, 1000, nullptr, nullptr, nullptr)) {
    while (!c.empty()) all.push_back(popText(c));
  }
  REQUIRE_EQ(all.size(), size_t(199));
  CHECK_EQ(all[0], std::string("item 2"));
  CHECK_EQ(all[197], std::string("item 199"));
  CHECK_EQ(all[198], std::string("late"));
}

TEST("mqr queue: bounded in items and bytes, batches take no more than the batch bounds") {
  MessageQueue q("q", 8, 1 << 20, nullptr);
  int posted = 0;
  while (post(q, "x")) ++posted;
  CHECK_EQ(posted, 8);
  // Bytes: 10 KiB items in a 64 KiB queue.
  MessageQueue big("big", 1000, 64 * 1024, nullptr);
  const std::string item(10 * 1024, 'y');
  posted = 0;
  while (post(big, item)) ++posted;
  CHECK_EQ(posted, 6);  // 6 x (10240 + 64) fit, 7 do not
  CHECK(big.bytes() <= size_t(64 * 1024));
  CHECK(big.post(item.data(), 64 * 1024, nullptr, nullptr, nullptr) ==
        MessageQueue::PostResult::TooBig);
  // A batch takes at most kBatchBytes past its first item.
  MessageQueue wide("wide", 1000, 64 << 20, nullptr);
  const std::string k40(40 * 1024, 'z');
  for (int i = 0; i < 10; ++i) CHECK(post(wide, k40));
  QueueBatch b(&wide);
  CHECK_EQ(wide.take(b, 64, nullptr, nullptr, nullptr), size_t(1));  // 40 + 40 > 64 KiB
}

TEST("mqr queue: a waiting sender is woken once the queue is down to half, not per item") {
  RecordingHost host;
  MessageQueue q("q", 100, 1 << 20, nullptr);
  for (int i = 0; i < 100; ++i) CHECK(post(q, "x"));
  int woken = 0;
  uint64_t key = 0;
  CHECK(q.post(
            "y", 1, &host, [&] { ++woken; }, &key) == MessageQueue::PostResult::Full);
  QueueBatch b(&q);
  while (q.size() > 50) {
    REQUIRE(q.take(b, 10, nullptr, nullptr, nullptr) > 0);
    while (!b.empty()) b.pop().release();
    if (q.size() > 50) CHECK_EQ(host.posted.size(), size_t(0));
  }
  REQUIRE_EQ(host.posted.size(), size_t(1));
  host.posted[0]();
  CHECK_EQ(woken, 1);
  CHECK(!q.cancel(key));  // already notified
}

TEST("mqr queue: each waiting receiver is woken once, by the posts that follow") {
  RecordingHost host;
  MessageQueue q("q", 100, 1 << 20, nullptr);
  std::vector<QueueBatch*> batches;
  std::vector<uint64_t> keys(3);
  for (int i = 0; i < 3; ++i) {
    batches.push_back(new QueueBatch(&q));
    CHECK_EQ(q.take(
                 *batches.back(), 64, &host, [] {}, &keys[size_t(i)]),
             size_t(0));
  }
  CHECK(post(q, "a"));
  CHECK_EQ(host.posted.size(), size_t(1));
  CHECK(post(q, "b"));
  CHECK(post(q, "c"));
  CHECK(post(q, "d"));
  CHECK_EQ(host.posted.size(), size_t(3));  // three waiters, three wake-ups, no more
  CHECK(!q.cancel(keys[0]));
  for (QueueBatch* b : batches) delete b;
}

TEST("mqr queue: many senders and receivers on threads, nothing lost or doubled") {
  MessageQueue q("q", 64, 1 << 20, nullptr);
  constexpr int kSenders = 3, kPerSender = 20000;
  std::atomic<int> received{0};
  std::atomic<uint64_t> sum{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int s = 0; s < kSenders; ++s) {
    threads.emplace_back([&, s] {
      for (int i = 0; i < kPerSender; ++i) {
        std::string v = std::to_string(s * kPerSender + i);
        while (!post(q, v)) std::this_thread::yield();
      }
    });
  }
  std::vector<std::thread> receivers;
  for (int r = 0; r < 2; ++r) {
    receivers.emplace_back([&] {
      QueueBatch b(&q);
      while (!done.load() || q.size() > 0) {
        if (!q.take(b, 64, nullptr, nullptr, nullptr)) {
          q.spinForItems(1000);
          continue;
        }
        while (!b.empty()) {
          std::string s = popText(b);
          sum += std::stoull(s);
          ++received;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  done = true;
  for (auto& t : receivers) t.join();
  const uint64_t n = uint64_t(kSenders) * kPerSender;
  CHECK_EQ(received.load(), int(n));
  CHECK_EQ(sum.load(), n * (n - 1) / 2);
}
