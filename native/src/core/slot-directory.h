// Which service each open connection of one worker is routed to, readable from any thread.
// A service may name only its own connections; for a handle of another worker this lets
// the caller be answered at once ("no such connection") instead of after a trip through
// that worker's inbox. Written only by the owning worker; the owner checks again when a
// forwarded request arrives, so a connection that ends in between is still refused.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/handle.h"

namespace lapps {

class SlotDirectory {
 public:
  SlotDirectory() = default;
  ~SlotDirectory() {
    for (auto& c : chunks_) delete[] c.load(std::memory_order_relaxed);
  }
  SlotDirectory(const SlotDirectory&) = delete;
  SlotDirectory& operator=(const SlotDirectory&) = delete;

  // Owner: the connection in `slot` with `generation` is open and routed to `service`.
  void publish(uint32_t slot, uint32_t generation, uint32_t service) {
    std::atomic<uint64_t>* chunk = chunks_[slot >> kChunkBits].load(std::memory_order_relaxed);
    if (!chunk) {
      // Chunks are only ever added (and freed with the worker): a reader that saw the
      // pointer may keep using it.
      chunk = new std::atomic<uint64_t>[kChunkSize]();
      chunks_[slot >> kChunkBits].store(chunk, std::memory_order_release);
    }
    chunk[slot & (kChunkSize - 1)].store(word(generation, service), std::memory_order_release);
  }
  // Owner: the slot names no open connection any more.
  void clear(uint32_t slot) {
    std::atomic<uint64_t>* chunk = chunks_[slot >> kChunkBits].load(std::memory_order_relaxed);
    if (chunk) chunk[slot & (kChunkSize - 1)].store(0, std::memory_order_release);
  }
  // Any thread: is `h` (of this worker) an open connection routed to `service`?
  bool routes(Handle h, uint32_t service) const {
    if (h.slot > Handle::kSlotMask || h.generation == 0) return false;
    const std::atomic<uint64_t>* chunk =
        chunks_[h.slot >> kChunkBits].load(std::memory_order_acquire);
    return chunk && chunk[h.slot & (kChunkSize - 1)].load(std::memory_order_acquire) ==
                        word(h.generation, service);
  }

 private:
  static constexpr unsigned kChunkBits = 12;
  static constexpr uint32_t kChunkSize = 1u << kChunkBits;
  static constexpr size_t kChunks = (size_t(Handle::kSlotMask) >> kChunkBits) + 1;

  // Never 0 for an open connection: its generation is never 0.
  static constexpr uint64_t word(uint32_t generation, uint32_t service) {
    return (uint64_t(generation) << 32) | service;
  }

  std::atomic<std::atomic<uint64_t>*> chunks_[kChunks]{};
};

}  // namespace lapps
