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
// clears; a reader gets a copy made under the lock. Stored compactly, in chunks that are
// never moved (no capacity doubling): about 80 bytes per slot, the user value on the heap
// only when a service set one. Asking (ws:info) is rare next to holding.
class ConnInfoTable {
 public:
  void publish(uint32_t slot, uint32_t generation, ConnInfo&& info) {
    std::lock_guard lock(mutex_);
    const size_t chunk = slot / kChunk;
    if (chunk >= chunks_.size()) chunks_.resize(chunk + 1);
    if (!chunks_[chunk]) chunks_[chunk] = std::make_unique<Entry[]>(kChunk);
    Entry& e = chunks_[chunk][slot % kChunk];
    e.generation = generation;
    e.service = info.service;
    e.pathLen = info.pathLen;
    e.peer = info.peer;
    e.target = std::move(info.target);
    if (info.user.kind != UserValue::Kind::None) {
      e.user = std::make_unique<UserValue>(std::move(info.user));
    }
  }
  // The connection in `slot` is gone; its client's address goes to `peer` (if asked), for
  // the owner to give back to the limiter.
  void clear(uint32_t slot, PeerAddress* peer = nullptr) {
    std::string target;  // freed outside the lock
    std::unique_ptr<UserValue> user;
    std::lock_guard lock(mutex_);
    if (Entry* e = entry(slot)) {
      if (peer && e->generation != 0) *peer = e->peer;
      e->generation = 0;
      target.swap(e->target);
      user = std::move(e->user);
    }
  }
  std::shared_ptr<const ConnInfo> find(uint32_t slot, uint32_t generation) const {
    auto info = std::make_shared<ConnInfo>();
    std::lock_guard lock(mutex_);
    const Entry* e = entry(slot);
    if (!e || e->generation != generation) return nullptr;
    info->peer = e->peer;
    info->target = e->target;
    info->pathLen = e->pathLen;
    info->service = e->service;
    if (e->user) info->user = *e->user;
    return info;
  }

 private:
  static constexpr size_t kChunk = 256;
  struct Entry {
    uint32_t generation = 0;  // 0: no open connection
    uint32_t service = 0;
    uint32_t pathLen = 0;
    PeerAddress peer{};
    std::string target;
    std::unique_ptr<UserValue> user;  // null: none
  };
  // Const, yet the entry is not: the chunks are the table's, its fields the owner's.
  Entry* entry(uint32_t slot) const {
    const size_t chunk = slot / kChunk;
    return chunk < chunks_.size() && chunks_[chunk] ? &chunks_[chunk][slot % kChunk] : nullptr;
  }
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Entry[]>> chunks_;
};

}  // namespace lapps
