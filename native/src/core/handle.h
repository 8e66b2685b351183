// A connection handle as given to Lua and C services: (worker, slot, generation) packed in
// 46 bits. Below 10^14, so a Lua number holds it exactly AND tostring() ("%.14g") prints
// it exactly: LAppS services key tables by tostring(handler). A stale handle (the slot
// was reused or freed) is detected by its generation and refused.
#pragma once

#include <cstdint>

namespace lapps {

struct Handle {
  static constexpr unsigned kSlotBits = 20;  // a million connections per worker
  static constexpr unsigned kWorkerBits = 8;
  static constexpr unsigned kGenerationBits = 18;
  static constexpr uint32_t kSlotMask = (1u << kSlotBits) - 1;
  static constexpr uint32_t kWorkerMask = (1u << kWorkerBits) - 1;
  static constexpr uint32_t kGenerationMask = (1u << kGenerationBits) - 1;

  uint32_t worker = 0;
  uint32_t slot = 0;
  uint32_t generation = 0;  // never 0 for a live connection, so 0 is never a valid handle

  constexpr uint64_t pack() const {
    return (uint64_t(generation & kGenerationMask) << (kSlotBits + kWorkerBits)) |
           (uint64_t(worker & kWorkerMask) << kSlotBits) | (slot & kSlotMask);
  }
  static constexpr Handle unpack(uint64_t v) {
    return Handle{uint32_t(v >> kSlotBits) & kWorkerMask, uint32_t(v) & kSlotMask,
                  uint32_t(v >> (kSlotBits + kWorkerBits)) & kGenerationMask};
  }
  // Smallest value of a live handle (generation 1, worker 0, slot 0).
  static constexpr uint64_t kMinLive = uint64_t(1) << (kSlotBits + kWorkerBits);
  // A Lua number names a connection only if it is an integer in the handle range.
  static bool fromNumber(double n, uint64_t& out) {
    if (!(n >= 1 && n <= double(kMax))) return false;
    out = uint64_t(n);
    return double(out) == n;  // integral (no call to floor on baseline x86-64)
  }
  // Largest packed value.
  static constexpr uint64_t kMax = (uint64_t(1) << (kSlotBits + kWorkerBits + kGenerationBits)) - 1;
  static_assert(kMax < 100000000000000ull, "tostring(handle) must be exact");
};

}  // namespace lapps
