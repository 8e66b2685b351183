// The access log (log.access): one line per handshake outcome, written by
// Worker::logHandshake (core/front-door.cc). This file holds what needs no worker: the
// bound on repeated refusals from one address, and the wording of an Origin refusal.
//
// A client refused again and again (a script retrying, a flood) must not turn the log into
// its echo: per worker, an address (an IPv6 /64, as for the per-IP limits: security/
// address-key.h) gets at most kLinesPerWindow refusal lines per window of
// kWindowMs; the rest are counted, and the window's end writes one line per address with
// the count. The table holds at most kMaxAddresses addresses per window; refusals from
// further addresses in that window are counted together ("other addresses"), so a flood
// from many addresses costs bounded memory too. Accepted handshakes (101) are not limited:
// the connection limits bound them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/peer-address.h"
#include "security/address-key.h"

namespace lapps {

class AccessLimiter {
 public:
  static constexpr uint32_t kLinesPerWindow = 10;
  static constexpr uint64_t kWindowMs = 10000;
  static constexpr size_t kMaxAddresses = 4096;

  enum class Verdict : uint8_t {
    Log,         // write the line
    LogAndOpen,  // write it; a window opened: call endWindow() in kWindowMs
    Suppress,    // counted, reported by endWindow()
  };

  // One refusal from `client`.
  Verdict note(const PeerAddress& client);

  struct Suppressed {
    PeerAddress client;
    uint64_t count;
  };
  // The window's end: the addresses with lines not written and how many, plus the count for
  // addresses beyond the table (`others`). Forgets everything: the next refusal opens a new
  // window.
  void endWindow(std::vector<Suppressed>& out, uint64_t& others);

  size_t trackedAddresses() const { return entries_.size(); }

 private:
  struct Entry {
    PeerAddress client;
    uint32_t lines = 0;
    uint64_t suppressed = 0;
  };

  bool open_ = false;
  uint64_t others_ = 0;
  std::unordered_map<AddressKey, Entry, AddressKeyHash> entries_;
};

// The 403 body (and access-log reason) of a refused Origin: names the origin and the
// config key that would let it in.
std::string originRefusal(std::string_view origin, std::string_view service);

}  // namespace lapps
