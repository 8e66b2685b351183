// Outbound WebSocket client (ws://, wss://, RFC 6455) on a host's epoll loop. Never
// blocks: resolution, connect, TLS and I/O all proceed from IoHost events.
//
// Lifecycle: connect() -> onOpen() -> onMessage()* -> onClosed(), which comes exactly once
// for every connect() that returned true. The listener may call any method from any
// callback and may destroy the client in any callback. onClosed() is called from within
// close() (only before the connection is open) and abort(); otherwise only from onIo().
// Timeouts (connect, close handshake, idle) are the host's: it calls abort().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "client/client-handshake.h"
#include "client/mask-rng.h"
#include "client/stream-client.h"
#include "client/tls-context.h"
#include "protocol/close-code.h"
#include "protocol/frame-parser.h"
#include "protocol/opcode.h"

namespace lapps {

class WsClientListener {
 public:
  virtual ~WsClientListener() = default;
  virtual void onOpen() = 0;
  // opcode 1 text (valid UTF-8), 2 binary; data is valid during the call only.
  virtual void onMessage(int opcode, const uint8_t* data, size_t len) = 0;
  // code: the server's close code after a clean close handshake (1005 if it sent none);
  // otherwise the code this client sent when failing the connection (1002, 1007, 1009),
  // or 1006. error: empty for a clean close, else why the connection failed.
  virtual void onClosed(uint16_t code, std::string_view reason, std::string_view error) = 0;
};

struct WsClientOptions {
  std::vector<std::string> protocols;   // Sec-WebSocket-Protocol offer, in preference order
  HeaderList headers;                   // extra request headers (Origin, Authorization, ...)
  TlsOptions tls;                       // tls.ctx is required for wss://
  uint64_t maxMessageSize = 16 << 20;   // larger incoming messages fail the connection (1009)
  size_t maxHandshakeBytes = 16 << 10;  // limit for the server's response head
};

class WsClient : public StreamClient {
 public:
  enum class State : uint8_t { Idle, Connecting, Open, Closing, Closed };

  WsClient(IoHost& host, WsClientListener& listener, WsClientOptions options = {});
  ~WsClient() override;

  // Starts connecting. False with `err` (and no callback ever) if the URL or the options
  // are unusable, wss:// lacks tls.ctx, or the client was used before.
  bool connect(std::string_view url, std::string& err);

  // Queues one message (opcode 1 text, 2 binary) as a single masked frame. False with a
  // reason if not open, the opcode is invalid or text is not UTF-8. Bytes the socket does
  // not take at once stay queued (see bufferedAmount()).
  bool send(int opcode, const uint8_t* data, size_t len, const char** whyNot = nullptr);
  // A ping with up to 125 bytes of payload; the server's pong is not reported.
  bool ping(const uint8_t* data, size_t len, const char** whyNot = nullptr);

  // Starts the close handshake: sends a close frame, then waits for the server's close
  // frame and for it to close TCP; onClosed() follows. code: 1000, 1001-1003, 1007-1014,
  // 3000-4999, or 1005 for a close frame without code. reason: UTF-8, cut to 123 bytes.
  // False (nothing done) for an invalid code or reason. Before the connection is open,
  // closing fails it at once: onClosed(1006, "", "closed before the connection opened").
  // No-op once closing.
  bool close(uint16_t code = kNormal, std::string_view reason = {});

  // Drops the connection now and reports onClosed() (unless already reported): with the
  // server's code and no error if the close handshake was complete, else 1006 and `error`.
  // For the host's timeouts.
  void abort(std::string_view error = "aborted");

  // Back-pressure: no onMessage() while paused (pings wait too); the server then sees
  // its TCP window fill up.
  void pauseReading() { setReadPaused(true); }
  void resumeReading() { setReadPaused(false); }

  State state() const;
  // The subprotocol the server selected; empty if none (or not open yet).
  const std::string& protocol() const { return protocol_; }
  const WsUrl& url() const { return url_; }

 private:
  enum class Stage : uint8_t { Idle, Connecting, Handshake, Open, Closing, Draining, Closed };
  struct Sink;

  void onStreamOpen() override;
  void onStreamData(uint8_t* data, size_t len) override;
  void onStreamEnd(std::string_view error) override;

  void onHandshakeData(const uint8_t* data, size_t len);
  void feedFrames(const uint8_t* data, size_t len);
  void queueFrame(Opcode op, const uint8_t* payload, size_t len);
  void sendClose(uint16_t code, std::string_view reason);
  void failProtocol(ParseError e);
  void report(uint16_t code, std::string_view reason, std::string_view error);

  WsClientListener& listener_;
  WsClientOptions opts_;
  WsUrl url_;
  std::string key_;
  std::string protocol_;
  Stage stage_ = Stage::Idle;
  std::string head_;         // response head being received
  FrameParserState parser_;  // server frames, parsed in the client role
  ParserLimits limits_;
  std::string message_;  // reassembly of a message that spans frames or reads
  MaskRng rng_;
  uint16_t closeCode_ = kNoStatus;  // from the server's close frame
  std::string closeReason_;
  bool closeSent_ = false;
};

}  // namespace lapps
