#include "client/ws-client.h"

#include <cstring>

#include "base/text.h"
#include "protocol/frame-encoder.h"
#include "protocol/unmask.h"
#include "protocol/utf8-validator.h"

namespace lapps {

namespace {

// Largest reassembly buffer kept between messages.
constexpr size_t kKeepMessageBuffer = 1 << 20;

}  // namespace

// Receives parsed server frames. Every callback into the listener is followed by a check
// that the client still exists (alive) and was not closed from inside the callback.
struct WsClient::Sink {
  WsClient& c;
  const Alive& alive;
  ParseError error = ParseError::None;

  bool live() const { return alive && c.stage_ != Stage::Closed; }

  bool onData(const uint8_t* data, size_t len, bool first, bool last, bool text) {
    // After our close frame, frames are read (to reach the server's close) but dropped.
    if (c.stage_ != Stage::Open) return true;
    const int op = text ? 1 : 2;
    if (first && last) {
      c.listener_.onMessage(op, data, len);
      return live();
    }
    std::string& m = c.message_;
    if (first) m.clear();
    // Room for the rest of this frame at once; its size was checked against the limit.
    const size_t want = m.size() + len + static_cast<size_t>(c.parser_.remaining);
    if (want > m.capacity()) m.reserve(want);
    m.append(reinterpret_cast<const char*>(data), len);
    if (!last) return true;
    c.listener_.onMessage(op, reinterpret_cast<const uint8_t*>(m.data()), m.size());
    if (!live()) return false;
    if (m.capacity() > kKeepMessageBuffer) {
      std::string().swap(m);
    } else {
      m.clear();
    }
    return true;
  }

  bool onPing(const uint8_t* payload, size_t len) {
    if (!c.closeSent_) c.queueFrame(Opcode::Pong, payload, len);
    return true;
  }

  bool onPong(const uint8_t*, size_t) { return true; }

  bool onClose(uint16_t code, const uint8_t* reason, size_t len) {
    c.closeCode_ = code;
    c.closeReason_.assign(reinterpret_cast<const char*>(reason), len);
    // The server started the close: echo its code (none if it sent none), then wait for
    // it to close TCP (RFC 6455 §7.1.1: the server closes first and keeps TIME_WAIT).
    if (!c.closeSent_) c.sendClose(code, {});
    c.stage_ = Stage::Draining;
    return false;  // nothing may follow a close frame
  }

  void onError(ParseError e) { error = e; }
};

WsClient::WsClient(IoHost& host, WsClientListener& listener, WsClientOptions options)
    : StreamClient(host),
      listener_(listener),
      opts_(std::move(options)),
      limits_{opts_.maxMessageSize} {}

WsClient::~WsClient() = default;

bool WsClient::connect(std::string_view url, std::string& err) {
  if (stage_ != Stage::Idle) {
    err = "client already used: create a new one per connection";
    return false;
  }
  if (!parseWsUrl(url, url_, err)) return false;
  if (!checkHandshakeOptions(opts_.protocols, opts_.headers, err)) return false;
  if (url_.secure && !opts_.tls.ctx) {
    err = "wss:// needs a TLS context (WsClientOptions::tls.ctx)";
    return false;
  }
  key_ = makeWsKey();
  if (!startConnect(url_.host, url_.port, url_.secure ? &opts_.tls : nullptr, err)) return false;
  stage_ = Stage::Connecting;
  return true;
}

WsClient::State WsClient::state() const {
  switch (stage_) {
    case Stage::Idle:
      return State::Idle;
    case Stage::Connecting:
    case Stage::Handshake:
      return State::Connecting;
    case Stage::Open:
      return State::Open;
    case Stage::Closing:
    case Stage::Draining:
      return State::Closing;
    case Stage::Closed:
      break;
  }
  return State::Closed;
}

void WsClient::onStreamOpen() {
  std::string request;
  appendClientHandshake(request, url_, key_, opts_.protocols, opts_.headers);
  std::memcpy(appendOut(request.size()), request.data(), request.size());
  stage_ = Stage::Handshake;
  flush();
}

void WsClient::onStreamData(uint8_t* data, size_t len) {
  if (stage_ == Stage::Handshake) {
    onHandshakeData(data, len);
  } else {
    feedFrames(data, len);
  }
}

void WsClient::onHandshakeData(const uint8_t* data, size_t len) {
  const size_t scanned = head_.size();
  head_.append(reinterpret_cast<const char*>(data), len);
  const size_t end = findHeadEnd(head_, scanned);
  if (end == 0 || end > opts_.maxHandshakeBytes) {
    if (end != 0 || head_.size() > opts_.maxHandshakeBytes)
      report(kAbnormal, {}, "handshake response too large");
    return;
  }
  std::string err;
  if (!checkServerHandshake(std::string_view(head_).substr(0, end), key_, opts_.protocols,
                            protocol_, err)) {
    report(kAbnormal, {}, err);
    return;
  }
  // Frames the server sent right behind its response.
  const std::string rest = head_.substr(end);
  std::string().swap(head_);
  stage_ = Stage::Open;
  Alive alive(this);
  listener_.onOpen();
  if (!alive || stage_ == Stage::Closed) return;
  if (!rest.empty()) feedFrames(reinterpret_cast<const uint8_t*>(rest.data()), rest.size());
}

void WsClient::feedFrames(const uint8_t* data, size_t len) {
  if (stage_ != Stage::Open && stage_ != Stage::Closing) return;
  Alive alive(this);
  Sink sink{*this, alive};
  parseFrames<FrameRole::Client>(parser_, limits_, data, len, sink);
  if (!alive) return;
  if (sink.error != ParseError::None && stage_ != Stage::Closed) failProtocol(sink.error);
}

void WsClient::queueFrame(Opcode op, const uint8_t* payload, size_t len) {
  uint8_t header[kMaxHeaderSize + 4];
  const size_t size = encodeHeader(header, op, len);
  header[1] |= 0x80;  // MASK
  const uint32_t key = rng_.next();
  std::memcpy(header + size, &key, 4);
  uint8_t* out = appendOut(size + 4 + len);
  std::memcpy(out, header, size + 4);
  if (len != 0) {
    std::memcpy(out + size + 4, payload, len);
    unmask(out + size + 4, len, header + size, 0);  // XOR: masking is its own inverse
  }
  flush();
}

void WsClient::sendClose(uint16_t code, std::string_view reason) {
  uint8_t payload[125];
  const size_t n = encodeClosePayload(payload, code, reason);
  queueFrame(Opcode::Close, payload, n);
  closeSent_ = true;
}

bool WsClient::send(int opcode, const uint8_t* data, size_t len, const char** whyNot) {
  const char* why = nullptr;
  if (stage_ != Stage::Open) {
    why = stage_ == Stage::Closing || stage_ == Stage::Draining ? "closing"
          : stage_ == Stage::Closed                             ? "closed"
                                                                : "not open yet";
  } else if (opcode != 1 && opcode != 2) {
    why = "opcode must be 1 (text) or 2 (binary)";
  } else if (opcode == 1 && !isValidUtf8(data, len)) {
    why = "text is not valid UTF-8";
  }
  if (why) {
    if (whyNot) *whyNot = why;
    return false;
  }
  queueFrame(opcode == 1 ? Opcode::Text : Opcode::Binary, data, len);
  return true;
}

bool WsClient::ping(const uint8_t* data, size_t len, const char** whyNot) {
  const char* why = stage_ != Stage::Open ? "not open"
                    : len > 125           ? "ping payload over 125 bytes"
                                          : nullptr;
  if (why) {
    if (whyNot) *whyNot = why;
    return false;
  }
  queueFrame(Opcode::Ping, data, len);
  return true;
}

bool WsClient::close(uint16_t code, std::string_view reason) {
  if (code != kNoStatus && !isValidCloseCode(code)) return false;
  if (!isValidUtf8(reinterpret_cast<const uint8_t*>(reason.data()), reason.size())) return false;
  switch (stage_) {
    case Stage::Idle:
      return false;
    case Stage::Connecting:
    case Stage::Handshake:
      report(kAbnormal, {}, "closed before the connection opened");
      return true;
    case Stage::Open:
      sendClose(code, reason);
      stage_ = Stage::Closing;
      return true;
    case Stage::Closing:
    case Stage::Draining:
    case Stage::Closed:
      return true;
  }
  return true;
}

void WsClient::abort(std::string_view error) {
  if (stage_ == Stage::Idle || stage_ == Stage::Closed) return;
  if (stage_ == Stage::Draining) {
    report(closeCode_, closeReason_, {});
  } else {
    report(kAbnormal, {}, error.empty() ? "aborted" : error);
  }
}

void WsClient::failProtocol(ParseError e) {
  // Fail the connection (RFC 6455 §7.1.7): our close frame goes out if the socket takes
  // it now; the connection is not kept open waiting for an answer.
  if (!closeSent_) sendClose(closeCodeFor(e), describe(e));
  report(closeCodeFor(e), describe(e), concatText({"invalid data from server: ", describe(e)}));
}

void WsClient::onStreamEnd(std::string_view error) {
  const char* eof = nullptr;
  switch (stage_) {
    case Stage::Idle:
    case Stage::Closed:
      return;
    case Stage::Draining:
      // The close handshake is complete: how TCP then ends does not matter.
      report(closeCode_, closeReason_, {});
      return;
    case Stage::Connecting:
      eof = "connection closed while connecting";
      break;
    case Stage::Handshake:
      eof = "connection closed during the opening handshake";
      break;
    case Stage::Open:
      eof = "connection closed without a close frame";
      break;
    case Stage::Closing:
      eof = "connection closed before the server's close frame";
      break;
  }
  report(kAbnormal, {}, error.empty() ? std::string_view(eof) : error);
}

void WsClient::report(uint16_t code, std::string_view reason, std::string_view error) {
  // Copies: the views may point into members, and the listener may destroy this client.
  const std::string r(reason), e(error);
  closeNow();
  stage_ = Stage::Closed;
  listener_.onClosed(code, r, e);
}

}  // namespace lapps
