// Repeated header values joined in order (protocol/http-fields.h).
#include <string>

#include "protocol/http-fields.h"
#include "test.h"

using namespace lapps;

TEST("header fields: repeated lines joined in order, names case-insensitive, OWS trimmed") {
  const std::string head =
      "GET /x-forwarded-for: 1.1.1.1 HTTP/1.1\r\n"
      "Host: a\r\n"
      "X-Forwarded-For: 203.0.113.9 , 10.0.0.1\r\n"
      "Upgrade: websocket\r\n"
      "x-forwarded-FOR:\t10.0.0.2\t\r\n"
      "X-Forwarded-Forx: 9.9.9.9\r\n"
      "\r\n"
      "X-Forwarded-For: 8.8.8.8\r\n";  // after the head: frames, not a header
  std::string out;
  CHECK_EQ(joinHeaderValues(head, "X-Forwarded-For", out), size_t{2});
  CHECK_EQ(out, std::string("203.0.113.9 , 10.0.0.1, 10.0.0.2"));
  std::string none;
  CHECK_EQ(joinHeaderValues(head, "Forwarded", none), size_t{0});
  CHECK(none.empty());
}

TEST("header fields: bare LF line ends") {
  std::string out;
  CHECK_EQ(
      joinHeaderValues("GET / HTTP/1.1\nForwarded: for=192.0.2.1\nHost: a\n\n", "forwarded", out),
      size_t{1});
  CHECK_EQ(out, std::string("for=192.0.2.1"));
}
