// Connection admission across all workers: the server-wide connection limit, the
// connections held per client address and the rate of new connections per address. Workers
// ask at accept and give back at teardown. IPv6 clients are counted per /64 (one host
// usually owns a whole /64, so counting single addresses would limit nothing); IPv4-mapped
// IPv6 addresses count as the IPv4 address.
#pragma once

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "security/address-key.h"

namespace lapps {

struct ConnLimits {
  uint32_t maxConnections = 0;  // all workers together; 0 = no limit
  uint32_t maxPerAddress = 0;   // held at once by one client address; 0 = no limit
  uint32_t newPerAddressPerSec =
      0;  // accepted per second per address (burst: one second's worth); 0 = no limit
};

class ConnLimiter {
 public:
  enum class Verdict : uint8_t { Ok, ServerFull, AddressFull, AddressRate };

  explicit ConnLimiter(const ConnLimits& limits) : limits_(limits) {}
  ConnLimiter(const ConnLimiter&) = delete;
  ConnLimiter& operator=(const ConnLimiter&) = delete;

  // Nothing to count: workers skip the calls entirely.
  bool active() const {
    return limits_.maxConnections || limits_.maxPerAddress || limits_.newPerAddressPerSec;
  }
  // Counts the connection in if it is within every limit. Only an Ok verdict must be
  // matched by a release().
  Verdict admit(const sockaddr* peer, uint64_t nowMs);
  void release(const sockaddr* peer);
  // admit() in two steps, for a client whose address is learned after accept (behind a
  // proxy): the server-wide count at accept, the address's once it is known. Each Ok is
  // matched by its own release (releaseTotal, or releaseAddress), or both by release().
  Verdict admitTotal();
  Verdict admitAddress(const sockaddr* peer, uint64_t nowMs);
  void releaseTotal() { total_.fetch_sub(1, std::memory_order_relaxed); }
  void releaseAddress(const sockaddr* peer);

  uint32_t connections() const { return total_.load(std::memory_order_relaxed); }
  // Addresses tracked (for tests: entries are dropped once idle).
  size_t trackedAddresses();

 private:
  using Key = AddressKey;
  using KeyHash = AddressKeyHash;
  struct Entry {
    uint32_t held = 0;
    double tokens = 0;  // new connections still allowed now (token bucket)
    uint64_t lastMs = 0;
  };
  // Striped: workers accepting from different addresses rarely meet on one lock.
  struct alignas(64) Shard {
    std::mutex mutex;
    std::unordered_map<Key, Entry, KeyHash> entries;
    size_t sweepAt = 1024;  // size at which idle entries are dropped
  };
  static constexpr size_t kShards = 64;

  static Key keyOf(const sockaddr* peer) { return AddressKey::of(peer); }
  Shard& shardOf(const Key& k) { return shards_[KeyHash{}(k) % kShards]; }
  // Refills the bucket; true if the entry carries nothing worth keeping.
  bool idle(Entry& e, uint64_t nowMs) const;

  const ConnLimits limits_;
  std::atomic<uint32_t> total_{0};
  std::array<Shard, kShards> shards_;
};

}  // namespace lapps
