#include "core/access-log.h"

namespace lapps {

AccessLimiter::Verdict AccessLimiter::note(const PeerAddress& client) {
  const bool opened = !open_;
  open_ = true;
  const AddressKey key = AddressKey::of(&client.sa);
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
