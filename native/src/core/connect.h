// Connect time: what a service with an onConnect entry point is shown of a handshake
// (ConnectRequest), what it answers (ConnectVerdict), and what stays known of an accepted
// connection for its whole life (ConnInfo: ws:info, the user value). A service without
// onConnect costs none of this but one ConnInfo per connection.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/peer-address.h"
#include "security/tls-info.h"

namespace lapps {

// A value a service attaches to a connection when it accepts it: a string or a number.
struct UserValue {
  enum class Kind : uint8_t { None, String, Number };
  Kind kind = Kind::None;
  double number = 0;
  std::string text;
};

// The handshake as the service sees it. The views point into the connection's handshake
// buffer: valid during the onConnect call only (a service that waits copies what it keeps).
struct ConnectRequest {
  std::string_view head;  // the request line and header lines, through the blank line
  // The header fields are read from `head` by whoever needs them (protocol/http-fields.h):
  // a service that reads none costs no copy of them.
  std::string_view method, target, path, query, origin, subprotocol;
  PeerAddress peer{};            // the client (behind trusted proxies: the real one)
  const TlsInfo* tls = nullptr;  // wss only
};

// What onConnect answered.
struct ConnectVerdict {
  enum class Kind : uint8_t { Accept, Refuse, Pending };
  Kind kind = Kind::Accept;
  int status = 403;    // Refuse: 400-599
  std::string reason;  // Refuse: the response body (text/plain); empty: the status's text
  UserValue user;      // Accept

  static ConnectVerdict refuse(int status, std::string reason) {
    ConnectVerdict v;
    v.kind = Kind::Refuse;
    v.status = status;
    v.reason = std::move(reason);
    return v;
  }
  static ConnectVerdict pending() {
    ConnectVerdict v;
    v.kind = Kind::Pending;
    return v;
  }
};

// What a service may read of one of its open connections (ws:info), from any worker.
// Immutable once published.
struct ConnInfo {
  PeerAddress peer{};
  std::string target;    // as routed: path and query
  uint32_t pathLen = 0;  // target[0, pathLen) is the path; the query follows a '?'
  uint32_t service = 0;  // ServiceSettings::index
  UserValue user;
  std::string_view path() const { return std::string_view(target).substr(0, pathLen); }
  std::string_view query() const {
    return pathLen < target.size() ? std::string_view(target).substr(pathLen + 1)
                                   : std::string_view();
  }
};

// The ConnInfo of each open connection of one worker, by slot, readable from other
// workers (a service may ask about any of its connections). The owner publishes and
// clears; readers copy the pointer under the lock, then read without it.
class ConnInfoTable {
 public:
  void publish(uint32_t slot, uint32_t generation, std::shared_ptr<const ConnInfo> info) {
    std::lock_guard lock(mutex_);
    if (slot >= entries_.size()) entries_.resize(size_t(slot) + 1);
    entries_[slot] = {generation, std::move(info)};
  }
  void clear(uint32_t slot) {
    std::shared_ptr<const ConnInfo> old;  // freed outside the lock
    std::lock_guard lock(mutex_);
    if (slot < entries_.size()) {
      old = std::move(entries_[slot].info);
      entries_[slot].generation = 0;
    }
  }
  std::shared_ptr<const ConnInfo> find(uint32_t slot, uint32_t generation) const {
    std::lock_guard lock(mutex_);
    if (slot >= entries_.size() || entries_[slot].generation != generation) return nullptr;
    return entries_[slot].info;
  }

 private:
  struct Entry {
    uint32_t generation = 0;
    std::shared_ptr<const ConnInfo> info;
  };
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
};

}  // namespace lapps
