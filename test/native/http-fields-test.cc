// What onConnect's request is made of (protocol/http-fields.h): header lines, the target's
// path and query, form decoding of the query, cookies.
#include <string>
#include <utility>
#include <vector>

#include "protocol/http-fields.h"
#include "test.h"

using namespace lapps;

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs headers(std::string_view head) {
  Pairs out;
  forEachHeaderField(head, [&](std::string_view n, std::string_view v) {
    out.emplace_back(std::string(n), std::string(v));
  });
  return out;
}

Pairs args(std::string_view query) {
  Pairs out;
  forEachQueryArg(query, [&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string(k), std::string(v));
  });
  return out;
}

Pairs cookies(std::string_view value) {
  Pairs out;
  forEachCookie(value, [&](std::string_view n, std::string_view v) {
    out.emplace_back(std::string(n), std::string(v));
  });
  return out;
}

std::string decoded(std::string_view s) {
  std::string out;
  decodeFormComponent(s, out);
  return out;
}

}  // namespace

TEST("http fields: header lines in order, values trimmed, stop at the blank line") {
  const char* head =
      "GET /chat?x=1 HTTP/1.1\r\nHost: a\r\nX-A:  one \t\r\nx-a:two\r\nEmpty:\r\n\r\nNot: a header";
  Pairs h = headers(head);
  CHECK_EQ(h.size(), size_t(4));
  CHECK(h[0] == Pairs::value_type("Host", "a"));
  CHECK(h[1] == Pairs::value_type("X-A", "one"));
  CHECK(h[2] == Pairs::value_type("x-a", "two"));
  CHECK(h[3] == Pairs::value_type("Empty", ""));
  // Bare LF line ends, as the parser accepts them.
  CHECK_EQ(headers("GET / HTTP/1.1\nHost: b\n\n").size(), size_t(1));
  CHECK_EQ(headers("GET / HTTP/1.1\r\n\r\n").size(), size_t(0));
  CHECK_EQ(requestLineTarget(head), std::string_view("/chat?x=1"));
  CHECK_EQ(requestLineTarget("GET ws://h/p HTTP/1.1\r\n"), std::string_view("ws://h/p"));
}

TEST("http fields: path and query") {
  std::string_view p, q;
  splitTarget("/a/b?x=1&y=2", p, q);
  CHECK_EQ(p, std::string_view("/a/b"));
  CHECK_EQ(q, std::string_view("x=1&y=2"));
  splitTarget("/a", p, q);
  CHECK_EQ(p, std::string_view("/a"));
  CHECK(q.empty());
  splitTarget("/a?", p, q);
  CHECK(q.empty());
  splitTarget("/a?q=1#frag", p, q);
  CHECK_EQ(q, std::string_view("q=1"));
  splitTarget("/a?b?c", p, q);
  CHECK_EQ(q, std::string_view("b?c"));
}

TEST("http fields: form decoding") {
  CHECK_EQ(decoded("a+b%20c"), std::string("a b c"));
  CHECK_EQ(decoded("%E2%9C%93"), std::string("\xE2\x9C\x93"));
  CHECK_EQ(decoded("%e2%9c%93"), std::string("\xE2\x9C\x93"));
  // A '%' that does not start an escape stays.
  CHECK_EQ(decoded("100%"), std::string("100%"));
  CHECK_EQ(decoded("%4"), std::string("%4"));
  CHECK_EQ(decoded("%zz%41"), std::string("%zzA"));
  CHECK_EQ(decoded("%00"), std::string(1, '\0'));
  CHECK_EQ(decoded(""), std::string());
}

TEST("http fields: query arguments") {
  Pairs a = args("a=1&b=&c&&=v&a=2&d=x=y");
  CHECK_EQ(a.size(), size_t(6));
  CHECK(a[0] == Pairs::value_type("a", "1"));
  CHECK(a[1] == Pairs::value_type("b", ""));
  CHECK(a[2] == Pairs::value_type("c", ""));
  CHECK(a[3] == Pairs::value_type("", "v"));
  CHECK(a[4] == Pairs::value_type("a", "2"));
  CHECK(a[5] == Pairs::value_type("d", "x=y"));
  CHECK_EQ(args("").size(), size_t(0));
  CHECK_EQ(args("&&&").size(), size_t(0));
  CHECK(args("k%3D=%26")[0] == Pairs::value_type("k=", "&"));
  // A long query is walked without recursion or quadratic work.
  std::string big;
  for (int i = 0; i < 10000; ++i) big += "k=v&";
  CHECK_EQ(args(big).size(), size_t(10000));
}

TEST("http fields: cookies") {
  Pairs c = cookies("sid=abc; theme=\"dark\";  empty=; noeq; =nameless; a=b=c");
  CHECK_EQ(c.size(), size_t(4));
  CHECK(c[0] == Pairs::value_type("sid", "abc"));
  CHECK(c[1] == Pairs::value_type("theme", "dark"));
  CHECK(c[2] == Pairs::value_type("empty", ""));
  CHECK(c[3] == Pairs::value_type("a", "b=c"));
  CHECK_EQ(cookies("").size(), size_t(0));
  CHECK_EQ(cookies(";;;").size(), size_t(0));
  CHECK(cookies("q=\"\"")[0] == Pairs::value_type("q", ""));
  CHECK(cookies("q=\"")[0] == Pairs::value_type("q", "\""));
}
