// Outbound TCP client (optionally TLS) on a host's epoll loop: a byte stream with a send
// queue and read back-pressure. Same threading and re-entrancy rules as WsClient: the
// listener may call any method from any callback and may destroy the client there;
// onClosed() comes exactly once per successful connect(), from onIo() or from abort().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "client/stream-client.h"
#include "client/tls-context.h"

namespace lapps {

class TcpClientListener {
 public:
  virtual ~TcpClientListener() = default;
  virtual void onConnect() = 0;
  // data is valid during the call only.
  virtual void onData(const uint8_t* data, size_t len) = 0;
  // error: empty when the peer closed the stream (EOF), else why it failed.
  virtual void onClosed(std::string_view error) = 0;
};

class TcpClient : public StreamClient {
 public:
  TcpClient(IoHost& host, TcpClientListener& listener) : StreamClient(host), listener_(listener) {}

  // Starts connecting to host:port (a name, an IP literal or "localhost"), over TLS if
  // tls && tls->ctx. False with `err` (and no callback ever) if that cannot start.
  bool connect(std::string_view host, uint16_t port, const TlsOptions* tls, std::string& err);

  // Queues bytes; they go out once connected, as fast as the socket takes them. False once
  // close() was called or the stream is over.
  bool send(const uint8_t* data, size_t len);

  // Graceful close: flushes the queue, then TLS close_notify and FIN. Data from the peer is
  // still delivered until it closes too (EOF), then onClosed(""). Before the connection is
  // up, it still connects, sends what was queued and closes. No-op after the first call.
  void close();

  // Drops the connection now; onClosed(error) unless already reported.
  void abort(std::string_view error = "aborted");

  // Back-pressure: no onData() while paused; the kernel's receive window then fills and
  // the peer slows down.
  void pauseReading() { setReadPaused(true); }
  void resumeReading() { setReadPaused(false); }
  bool readingPaused() const { return readPaused(); }

  bool connected() const { return phase() == Phase::Open; }
  bool closed() const { return phase() == Phase::Closed; }

 private:
  void onStreamOpen() override;
  void onStreamData(uint8_t* data, size_t len) override;
  void onStreamEnd(std::string_view error) override;

  TcpClientListener& listener_;
  bool closing_ = false;
  bool reported_ = false;
};

}  // namespace lapps
