#include "client/http-connection.h"

#include <cstring>

#include "base/text.h"

namespace lapps {

bool HttpConnection::connect(std::string_view host, uint16_t port, const TlsOptions* tls,
                             std::string& err) {
  return startConnect(host, port, tls, err);
}

void HttpConnection::request(std::string_view bytes, bool head, const HttpResponseLimits& limits,
                             HttpConnectionListener* listener) {
  listener_ = listener;
  parser_ = HttpResponseParser(limits);
  parser_.reset(head);
  inFlight_ = true;
  reusable_ = false;
  ++uses_;
  std::memcpy(appendOut(bytes.size()), bytes.data(), bytes.size());
  flush();
}

void HttpConnection::onStreamData(uint8_t* data, size_t len) {
  if (!inFlight_) {
    // Nothing was asked: a server may only speak first to close (RFC 9112 §9.6 allows a
    // 408 before closing an idle connection). Either way this connection is done.
    closeNow();
    failWith("unsolicited data on an idle connection");
    return;
  }
  const size_t used = parser_.feed(reinterpret_cast<const char*>(data), len);
  switch (parser_.status()) {
    case HttpResponseParser::Status::NeedMore:
      return;
    case HttpResponseParser::Status::Complete:
      inFlight_ = false;
      // Bytes past the response answer nothing we asked: the stream cannot be trusted again.
      reusable_ = parser_.keepAlive() && used == len;
      if (listener_) listener_->onResponse(*this);
      return;
    case HttpResponseParser::Status::Failed:
      closeNow();
      failWith(concatText({describe(parser_.error()), ": ", parser_.detail()}));
      return;
  }
}

void HttpConnection::onStreamEnd(std::string_view error) {
  if (!inFlight_) {
    failWith(error.empty() ? std::string("closed by the server") : std::string(error));
    return;
  }
  if (!error.empty()) {
    failWith(parser_.started() ? concatText({"closed early: ", error}) : std::string(error));
    return;
  }
  parser_.finish();
  if (parser_.status() == HttpResponseParser::Status::Complete) {
    inFlight_ = false;
    reusable_ = false;
    if (listener_) listener_->onResponse(*this);
    return;
  }
  failWith(concatText({describe(parser_.error()), ": ", parser_.detail()}));
}

void HttpConnection::failWith(std::string error) {
  inFlight_ = false;
  reusable_ = false;
  if (listener_) listener_->onFailure(*this, error);
}

}  // namespace lapps
