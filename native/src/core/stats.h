// Counters per worker, in one native block that Node reads as a BigUint64Array without
// copies. Only the owning worker writes a row; readers may see a counter a moment old.
#pragma once

#include <atomic>
#include <cstdint>

namespace lapps {

enum class Counter : uint32_t {
  ConnectionsOpen,      // gauge: sockets this worker holds
  ConnectionsAccepted,  // total accepted (or adopted)
  HandshakesOk,
  HandshakesFailed,
  MessagesIn,
  MessagesOut,
  BytesIn,
  BytesOut,
  ProtocolErrors,
  ServiceErrors,
  SlowConsumers,
  Timeouts,
  kCount,
};

constexpr uint32_t kCounterCount = uint32_t(Counter::kCount);

struct WorkerStats {
  std::atomic<uint64_t> v[kCounterCount];

  // Single writer: a relaxed load + store is enough and avoids a locked instruction.
  void add(Counter c, uint64_t n = 1) {
    auto& x = v[uint32_t(c)];
    x.store(x.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(Counter c, uint64_t n = 1) {
    auto& x = v[uint32_t(c)];
    x.store(x.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
};

static_assert(sizeof(WorkerStats) == kCounterCount * sizeof(uint64_t));

}  // namespace lapps
