// websocketpp fan-out server (Debian libwebsocketpp-dev 0.8.2, Boost.Asio transport, one
// thread): a benchmark peer (see README.md, "Fan-out peers"). One channel. Text "sub"
// subscribes the connection (answered with text "ok"); a binary message is sent to every
// subscriber with send(hdl, msg), as websocketpp's broadcast example does. websocketpp has
// no public way to frame a message once for many connections: send() of a message not yet
// prepared frames it into a fresh outgoing message per connection (connection_impl.hpp),
// so each subscriber costs a frame header and a payload copy. The
// built-in publisher: "go <n> <size>" sends n messages (sequence number, CLOCK_MONOTONIC
// ns, filler), each built once and sent to every subscriber the same way; "rate <r> <size>" does so
// r times per second on an asio timer until that connection closes. Logging is off.
//
// Usage: websocketpp-fanout [port]   (port from argv[1], else $PORT, else 0)
// Prints "listening <port>" once accepting; exits 0 on SIGTERM / SIGINT.
#include "peer-common.h"

#include <sys/resource.h>
#include <time.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

namespace {

using Server = websocketpp::server<websocketpp::config::asio>;
using Hdl = websocketpp::connection_hdl;
constexpr const char* kName = "websocketpp-fanout";

uint64_t monotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

class Fanout {
 public:
  explicit Fanout(Server& s) : s_(s) {}

  void onMessage(Hdl hdl, Server::message_ptr msg) {
    if (msg->get_opcode() == websocketpp::frame::opcode::binary) return broadcast(msg);
    const std::string& text = msg->get_payload();
    websocketpp::lib::error_code ec;
    if (text == "sub") {
      subs_.insert(hdl);
      s_.send(hdl, "ok", websocketpp::frame::opcode::text, ec);
      return;
    }
    unsigned long long a = 0, b = 0;
    if (std::sscanf(text.c_str(), "go %llu %llu", &a, &b) == 2 && b >= 16) {
      for (unsigned long long i = 0; i < a; ++i) publish(hdl, size_t(b));
    } else if (std::sscanf(text.c_str(), "rate %llu %llu", &a, &b) == 2 && a > 0 && b >= 16) {
      startRate(hdl, a, size_t(b));
    }
  }

  void onClose(Hdl hdl) {
    subs_.erase(hdl);
    auto it = timers_.find(hdl);
    if (it != timers_.end()) {
      it->second->cancel();
      timers_.erase(it);
    }
  }

 private:
  void broadcast(const Server::message_ptr& msg) {
    for (const Hdl& h : subs_) {
      websocketpp::lib::error_code ec;
      s_.send(h, msg, ec);  // a dead subscriber is not an error; its close handler comes
    }
  }

  // One message of the built-in publisher, built once for all subscribers.
  void publish(Hdl via, size_t size) {
    websocketpp::lib::error_code ec;
    auto con = s_.get_con_from_hdl(via, ec);
    if (ec) return;
    Server::message_ptr msg = con->get_message(websocketpp::frame::opcode::binary, size);
    std::string payload(size, 'x');
    uint64_t fields[2] = {++seq_, monotonicNs()};
    for (int f = 0; f < 2; ++f) {
      for (int i = 0; i < 8; ++i) payload[size_t(8 * f + i)] = char(fields[f] >> (8 * i));
    }
    msg->set_payload(payload);
    broadcast(msg);
  }

  void startRate(Hdl hdl, unsigned long long rate, size_t size) {
    auto timer = std::make_shared<boost::asio::steady_timer>(s_.get_io_service());
    timers_[hdl] = timer;
    auto start = std::chrono::steady_clock::now();
    auto interval = std::chrono::nanoseconds(1000000000ull / rate);
    tick(hdl, timer, start, interval, 0, size);
  }

  void tick(Hdl hdl, std::shared_ptr<boost::asio::steady_timer> timer,
            std::chrono::steady_clock::time_point start, std::chrono::nanoseconds interval,
            uint64_t n, size_t size) {
    timer->expires_at(start + interval * int64_t(n + 1));
    timer->async_wait([=, this](const boost::system::error_code& ec) {
      if (ec) return;
      publish(hdl, size);
      tick(hdl, timer, start, interval, n + 1, size);
    });
  }

  Server& s_;
  std::set<Hdl, std::owner_less<Hdl>> subs_;
  std::map<Hdl, std::shared_ptr<boost::asio::steady_timer>, std::owner_less<Hdl>> timers_;
  uint64_t seq_ = 0;
};

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
  server.set_tcp_pre_init_handler([&server](Hdl hdl) {
    boost::system::error_code ec;
    server.get_con_from_hdl(hdl)->get_socket().lowest_layer().set_option(
        boost::asio::ip::tcp::no_delay(true), ec);
  });
  Fanout fanout(server);
  server.set_message_handler(
      [&fanout](Hdl hdl, Server::message_ptr msg) { fanout.onMessage(hdl, msg); });
  server.set_close_handler([&fanout](Hdl hdl) { fanout.onClose(hdl); });
  server.set_fail_handler([&fanout](Hdl hdl) { fanout.onClose(hdl); });

  boost::asio::signal_set signals(server.get_io_service(), SIGTERM, SIGINT);
  signals.async_wait([&server](const boost::system::error_code& ec, int) {
    if (ec) return;
    websocketpp::lib::error_code ignored;
    server.stop_listening(ignored);
    server.stop();
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
