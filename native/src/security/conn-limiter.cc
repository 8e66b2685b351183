#include "security/conn-limiter.h"

#include <algorithm>
#include <iterator>

namespace lapps {

bool ConnLimiter::idle(Entry& e, uint64_t nowMs) const {
  const double rate = limits_.newPerAddressPerSec;
  if (rate > 0 && nowMs > e.lastMs) {
    e.tokens = std::min(rate, e.tokens + double(nowMs - e.lastMs) * rate / 1000.0);
    e.lastMs = nowMs;
  }
  return e.held == 0 && (rate == 0 || e.tokens >= rate);
}

ConnLimiter::Verdict ConnLimiter::admit(const sockaddr* peer, uint64_t nowMs) {
  Verdict v = admitTotal();
  if (v != Verdict::Ok) return v;
  v = admitAddress(peer, nowMs);
  if (v != Verdict::Ok) releaseTotal();
  return v;
}

ConnLimiter::Verdict ConnLimiter::admitTotal() {
  const uint32_t total = total_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (limits_.maxConnections && total > limits_.maxConnections) {
    total_.fetch_sub(1, std::memory_order_relaxed);
    return Verdict::ServerFull;
  }
  return Verdict::Ok;
}

ConnLimiter::Verdict ConnLimiter::admitAddress(const sockaddr* peer, uint64_t nowMs) {
  if (!limits_.maxPerAddress && !limits_.newPerAddressPerSec) return Verdict::Ok;
  const Key key = keyOf(peer);
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  if (shard.entries.size() >= shard.sweepAt) {
    for (auto it = shard.entries.begin(); it != shard.entries.end();) {
      it = idle(it->second, nowMs) ? shard.entries.erase(it) : std::next(it);
    }
    shard.sweepAt = std::max<size_t>(1024, shard.entries.size() * 2);
  }
  auto [it, fresh] = shard.entries.try_emplace(key);
  Entry& e = it->second;
  if (fresh) {
    e.tokens = limits_.newPerAddressPerSec;
    e.lastMs = nowMs;
  } else {
    idle(e, nowMs);  // refills the bucket
  }
  Verdict v = Verdict::Ok;
  if (limits_.maxPerAddress && e.held >= limits_.maxPerAddress) {
    v = Verdict::AddressFull;
  } else if (limits_.newPerAddressPerSec && e.tokens < 1.0) {
    v = Verdict::AddressRate;
  }
  if (v != Verdict::Ok) return v;
  if (limits_.newPerAddressPerSec) e.tokens -= 1.0;
  ++e.held;
  return v;
}

void ConnLimiter::release(const sockaddr* peer) {
  releaseTotal();
  releaseAddress(peer);
}

void ConnLimiter::releaseAddress(const sockaddr* peer) {
  if (!limits_.maxPerAddress && !limits_.newPerAddressPerSec) return;
  const Key key = keyOf(peer);
  Shard& shard = shardOf(key);
  std::lock_guard lock(shard.mutex);
  auto it = shard.entries.find(key);
  if (it == shard.entries.end() || it->second.held == 0) return;
  // Without a rate limit an entry only holds the count: drop it at zero. With one, it also
  // remembers recent connections; the sweep in admit() drops it once its bucket is full.
  if (--it->second.held == 0 && !limits_.newPerAddressPerSec) shard.entries.erase(it);
}

size_t ConnLimiter::trackedAddresses() {
  size_t n = 0;
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mutex);
    n += s.entries.size();
  }
  return n;
}

}  // namespace lapps
