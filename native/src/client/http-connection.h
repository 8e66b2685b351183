// One outbound HTTP/1.1 connection (http or https) on a host's loop, for lapps.http: the
// StreamClient transport (resolve, connect, TLS) carrying one request at a time, its
// response read by HttpResponseParser. Between requests it may sit in a keep-alive pool;
// whoever holds it sets the listener.
//
// Same threading and re-entrancy rules as StreamClient: callbacks come from onIo() only, and
// the listener may destroy the connection (or hand it on) from any of them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "client/http-response-parser.h"
#include "client/stream-client.h"
#include "client/tls-context.h"

namespace lapps {

class HttpConnection;

class HttpConnectionListener {
 public:
  virtual ~HttpConnectionListener() = default;
  // The response is complete: conn.response() holds it.
  virtual void onResponse(HttpConnection& conn) = 0;
  // The connection is over (already closed): `error` says why, for the request in flight
  // ("closed early: ...", "malformed response: ...", a transport error), or, with no request
  // in flight, that the peer closed or spoke unasked.
  virtual void onFailure(HttpConnection& conn, std::string_view error) = 0;
};

class HttpConnection final : public StreamClient {
 public:
  explicit HttpConnection(IoHost& host) : StreamClient(host) {}

  // Starts connecting; false with `err` (and no callback ever) if that cannot start.
  bool connect(std::string_view host, uint16_t port, const TlsOptions* tls, std::string& err);

  // Sends one serialised request; its response goes to `listener`. Precondition: no request
  // in flight. Before the stream is open, the bytes wait for it.
  void request(std::string_view bytes, bool head, const HttpResponseLimits& limits,
               HttpConnectionListener* listener);

  void setListener(HttpConnectionListener* listener) { listener_ = listener; }
  HttpResponseParser& response() { return parser_; }
  bool inFlight() const { return inFlight_; }
  // Open, and the last response left it fit for another request.
  bool reusable() const { return phase() == Phase::Open && !inFlight_ && reusable_; }
  // Requests sent on it so far.
  unsigned uses() const { return uses_; }

 private:
  void onStreamOpen() override {}
  void onStreamData(uint8_t* data, size_t len) override;
  void onStreamEnd(std::string_view error) override;
  void failWith(std::string error);

  HttpConnectionListener* listener_ = nullptr;
  HttpResponseParser parser_;
  bool inFlight_ = false;
  bool reusable_ = false;
  unsigned uses_ = 0;
};

}  // namespace lapps
