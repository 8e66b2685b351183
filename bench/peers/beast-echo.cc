// Boost.Beast echo server (Debian libboost-dev 1.74, no TLS): a benchmark peer. Async, one
// io_context on one thread; each session reads a whole message into a flat_buffer and
// writes it back with the same opcode. No permessage-deflate (Beast's default); the only
// timer is a handshake timeout, none on the data path.
//
// Usage: beast-echo [port]   (port from argv[1], else $PORT, else 0 = any free port)
// Prints "listening <port>" once accepting; exits 0 on SIGTERM / SIGINT.
#include "peer-common.h"

#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

namespace {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;
using tcp = boost::asio::ip::tcp;

constexpr std::size_t kMaxMessage = 64 * 1024 * 1024;

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket&& socket) : ws_(std::move(socket)) {}

  void start() {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ec);
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(30);
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    ws_.set_option(t);
    ws_.read_message_max(kMaxMessage);
    ws_.async_accept(beast::bind_front_handler(&Session::onAccept, shared_from_this()));
  }

 private:
  void onAccept(beast::error_code ec) {
    if (ec) return;
    read();
  }

  void read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&Session::onRead, shared_from_this()));
  }

  void onRead(beast::error_code ec, std::size_t) {
    if (ec) return;  // closed, reset or protocol error: the session ends
    ws_.text(ws_.got_text());
    ws_.async_write(buffer_.data(),
                    beast::bind_front_handler(&Session::onWrite, shared_from_this()));
  }

  void onWrite(beast::error_code ec, std::size_t n) {
    if (ec) return;
    buffer_.consume(n);
    read();
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::acceptor&& acceptor)
      : ioc_(ioc), acceptor_(std::move(acceptor)) {}

  void accept() {
    acceptor_.async_accept(ioc_,
                           beast::bind_front_handler(&Listener::onAccept, shared_from_this()));
  }

  void close() {
    beast::error_code ec;
    acceptor_.close(ec);
  }

 private:
  void onAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;  // closed on shutdown
    if (!ec) std::make_shared<Session>(std::move(socket))->start();
    accept();  // EMFILE and the like: keep serving the open connections
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
};

}  // namespace

int main(int argc, char** argv) {
  const int port = peer::parsePort(argc, argv);
  peer::raiseFdLimit();

  net::io_context ioc{1};  // concurrency hint: exactly one thread runs it

  tcp::acceptor acceptor(ioc);
  const tcp::endpoint ep(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
  beast::error_code ec;
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(4096, ec);
  if (ec) {
    std::fprintf(stderr, "beast-echo: listen: %s\n", ec.message().c_str());
    return 1;
  }
  const unsigned bound = acceptor.local_endpoint().port();
  auto listener = std::make_shared<Listener>(ioc, std::move(acceptor));
  listener->accept();

  net::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait([&](const beast::error_code& e, int) {
    if (e) return;
    listener->close();
    ioc.stop();  // drops open sessions; the benchmark is over
  });

  std::printf("listening %u\n", bound);
  std::fflush(stdout);
  ioc.run();
  return 0;
}
