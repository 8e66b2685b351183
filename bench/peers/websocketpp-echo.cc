// websocketpp echo server (Debian libwebsocketpp-dev 0.8.2, Boost.Asio transport): a
// benchmark peer. Echoes every message with its own opcode, on one thread. Logging is
// switched off entirely so no access/error log call sits on the data path; otherwise the
// library's defaults apply (read buffer, no permessage-deflate in config::asio).
//
// Built twice: websocketpp-echo (config::asio, plain) and, with LAPPS_PEER_TLS=1,
// websocketpp-tls-echo (config::asio_tls: asio::ssl over the system OpenSSL). The TLS
// context is built once and shared by every connection; the library's TLS example builds
// one per connection, which would put reading the key files into every handshake.
//
// Usage: websocketpp-echo [port]   (port from argv[1], else $PORT, else 0 = any free port)
//        websocketpp-tls-echo port cert.pem key.pem
// Prints "listening <port>" once accepting; exits 0 on SIGTERM / SIGINT.
#include "peer-common.h"

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <memory>
#if LAPPS_PEER_TLS
#include <boost/asio/ssl/context.hpp>
#include <websocketpp/config/asio.hpp>
#else
#include <websocketpp/config/asio_no_tls.hpp>
#endif
#include <websocketpp/server.hpp>

namespace {

#if LAPPS_PEER_TLS
using Server = websocketpp::server<websocketpp::config::asio_tls>;
constexpr const char* kName = "websocketpp-tls-echo";
#else
using Server = websocketpp::server<websocketpp::config::asio>;
constexpr const char* kName = "websocketpp-echo";
#endif

constexpr size_t kMaxMessage = 64 * 1024 * 1024;

}  // namespace

int main(int argc, char** argv) {
  const int port = peer::parsePort(argc, argv);
  peer::raiseFdLimit();

  Server server;
  server.clear_access_channels(websocketpp::log::alevel::all);
  server.clear_error_channels(websocketpp::log::elevel::all);
  server.init_asio();
  server.set_reuse_addr(true);
  server.set_listen_backlog(4096);
  server.set_max_message_size(kMaxMessage);
  // TCP_NODELAY once the socket is accepted: the socket init handler runs before
  // async_accept, on a socket not open yet, where setting it fails (silently).
  server.set_tcp_pre_init_handler([&server](websocketpp::connection_hdl hdl) {
    boost::system::error_code ec;
    server.get_con_from_hdl(hdl)->get_socket().lowest_layer().set_option(
        boost::asio::ip::tcp::no_delay(true), ec);
  });
#if LAPPS_PEER_TLS
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s port cert.pem key.pem\n", kName);
    return 2;
  }
  auto tls = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  try {
    tls->set_options(boost::asio::ssl::context::default_workarounds |
                     boost::asio::ssl::context::no_sslv2 | boost::asio::ssl::context::no_sslv3 |
                     boost::asio::ssl::context::no_tlsv1 | boost::asio::ssl::context::no_tlsv1_1);
    tls->use_certificate_chain_file(argv[2]);
    tls->use_private_key_file(argv[3], boost::asio::ssl::context::pem);
  } catch (const boost::system::system_error& e) {
    std::fprintf(stderr, "%s: TLS setup: %s\n", kName, e.what());
    return 1;
  }
  server.set_tls_init_handler([tls](websocketpp::connection_hdl) { return tls; });
#endif
  server.set_message_handler([&server](websocketpp::connection_hdl hdl, Server::message_ptr msg) {
    websocketpp::lib::error_code ec;
    server.send(hdl, msg->get_payload(), msg->get_opcode(), ec);  // a dead peer is not an error
  });

  boost::asio::signal_set signals(server.get_io_service(), SIGTERM, SIGINT);
  signals.async_wait([&server](const boost::system::error_code& ec, int) {
    if (ec) return;
    websocketpp::lib::error_code ignored;
    server.stop_listening(ignored);
    server.stop();  // drops open connections; the benchmark is over
  });

  const boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"),
                                          static_cast<unsigned short>(port));
  websocketpp::lib::error_code ec;
  server.listen(ep, ec);
  if (ec) {
    std::fprintf(stderr, "%s: listen: %s\n", kName, ec.message().c_str());
    return 1;
  }
  server.start_accept(ec);
  if (ec) {
    std::fprintf(stderr, "%s: accept: %s\n", kName, ec.message().c_str());
    return 1;
  }
  boost::system::error_code aec;
  std::printf("listening %u\n", static_cast<unsigned>(server.get_local_endpoint(aec).port()));
  std::fflush(stdout);
  server.run();
  return 0;
}
