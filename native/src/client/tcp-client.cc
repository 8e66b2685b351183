#include "client/tcp-client.h"

#include <cstring>

namespace lapps {

bool TcpClient::connect(std::string_view host, uint16_t port, const TlsOptions* tls,
                        std::string& err) {
  return startConnect(host, port, tls, err);
}

bool TcpClient::send(const uint8_t* data, size_t len) {
  const Phase p = phase();
  if (closing_ || p == Phase::Idle || p == Phase::Closed) return false;
  if (len == 0) return true;
  std::memcpy(appendOut(len), data, len);
  flush();
  return true;
}

void TcpClient::close() {
  const Phase p = phase();
  if (closing_ || p == Phase::Idle || p == Phase::Closed) return;
  closing_ = true;
  shutdownAfterFlush();
}

void TcpClient::abort(std::string_view error) {
  if (reported_ || phase() == Phase::Idle) return;
  onStreamEnd(error.empty() ? "aborted" : error);
}

void TcpClient::onStreamOpen() {
  listener_.onConnect();
}

void TcpClient::onStreamData(uint8_t* data, size_t len) {
  listener_.onData(data, len);
}

void TcpClient::onStreamEnd(std::string_view error) {
  if (reported_) return;
  reported_ = true;
  const std::string e(error);  // may point into state the listener destroys
  closeNow();
  listener_.onClosed(e);
}

}  // namespace lapps
