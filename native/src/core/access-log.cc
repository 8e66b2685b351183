#include "core/access-log.h"

#include <cstring>

namespace lapps {

AccessLimiter::Key AccessLimiter::keyOf(const PeerAddress& a) {
  Key k{0, 0};
  if (a.sa.sa_family == AF_INET6) {
    std::memcpy(&k.hi, a.v6.sin6_addr.s6_addr, 8);
    std::memcpy(&k.lo, a.v6.sin6_addr.s6_addr + 8, 8);
  } else {
    k.hi = ~uint64_t(0);  // apart from every IPv6 address in practice
    k.lo = a.v4.sin_addr.s_addr;
  }
  return k;
}

AccessLimiter::Verdict AccessLimiter::note(const PeerAddress& client) {
  const bool opened = !open_;
  open_ = true;
  const Key key = keyOf(client);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (entries_.size() >= kMaxAddresses) {  // only once a window is open
      ++others_;
      return Verdict::Suppress;
    }
    it = entries_.emplace(key, Entry{client}).first;
  }
  Entry& e = it->second;
  if (e.lines >= kLinesPerWindow) {
    ++e.suppressed;
    return Verdict::Suppress;
  }
  ++e.lines;
  return opened ? Verdict::LogAndOpen : Verdict::Log;
}

void AccessLimiter::endWindow(std::vector<Suppressed>& out, uint64_t& others) {
  for (const auto& [key, e] : entries_) {
    if (e.suppressed) out.push_back(Suppressed{e.client, e.suppressed});
  }
  others = others_;
  others_ = 0;
  entries_.clear();
  open_ = false;
}

std::string originRefusal(std::string_view origin, std::string_view service) {
  // The origin is the client's text: bounded, so a huge header makes no huge body.
  constexpr size_t kMaxShown = 200;
  std::string s;
  if (origin.empty()) {
    s = "origin not allowed: the request has no Origin header (to let such clients in, set "
        "\"allow_missing_origin\": true in service \"";
    s.append(service).append("\")");
    return s;
  }
  s = "origin not allowed: ";
  s.append(origin.substr(0, kMaxShown));
  if (origin.size() > kMaxShown) s.append("...");
  s.append(" (to let it in, add it to \"origins\" of service \"").append(service).append("\")");
  return s;
}

}  // namespace lapps
