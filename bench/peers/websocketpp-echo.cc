// websocketpp echo server (Debian libwebsocketpp-dev 0.8.2, Boost.Asio transport, no TLS):
// a benchmark peer. Echoes every message with its own opcode, on one thread. Logging is
// switched off entirely so no access/error log call sits on the data path; otherwise the
// library's defaults apply (read buffer, no permessage-deflate in config::asio).
//
// Usage: websocketpp-echo [port]   (port from argv[1], else $PORT, else 0 = any free port)
// Prints "listening <port>" once accepting; exits 0 on SIGTERM / SIGINT.
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

namespace {

using Server = websocketpp::server<websocketpp::config::asio>;

constexpr size_t kMaxMessage = 64 * 1024 * 1024;

int parsePort(int argc, char** argv) {
  const char* s = argc > 1 ? argv[1] : std::getenv("PORT");
  if (s == nullptr || *s == '\0') return 0;
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (*end != '\0' || v < 0 || v > 65535) {
    std::fprintf(stderr, "websocketpp-echo: bad port '%s'\n", s);
    std::exit(2);
  }
  return static_cast<int>(v);
}

void raiseFdLimit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int port = parsePort(argc, argv);
  raiseFdLimit();

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
    std::fprintf(stderr, "websocketpp-echo: listen: %s\n", ec.message().c_str());
    return 1;
  }
  server.start_accept(ec);
  if (ec) {
    std::fprintf(stderr, "websocketpp-echo: accept: %s\n", ec.message().c_str());
    return 1;
  }
  boost::system::error_code aec;
  std::printf("listening %u\n", static_cast<unsigned>(server.get_local_endpoint(aec).port()));
  std::fflush(stdout);
  server.run();
  return 0;
}
