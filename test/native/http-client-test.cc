// HttpResponseParser (client/http-response-parser.h): the response lapps.http reads, fed
// whole and split at every byte; each limit crossed; each malformed form refused.
#include <string>

#include "client/http-response-parser.h"
#include "test.h"

using lapps::HttpResponseError;
using lapps::HttpResponseLimits;
using lapps::HttpResponseParser;
using Status = HttpResponseParser::Status;

namespace {

struct Outcome {
  Status status = Status::NeedMore;
  HttpResponseError error = HttpResponseError::None;
  std::string detail;
  int code = 0;
  std::string body;
  size_t used = 0;
};

// Feeds `text` in pieces of `step` bytes (0: whole), then EOF if `eof`.
Outcome run(const std::string& text, size_t step = 0, bool eof = false, bool head = false,
            HttpResponseLimits limits = {}) {
  HttpResponseParser p(limits);
  p.reset(head);
  size_t used = 0;
  if (step == 0) step = text.size() ? text.size() : 1;
  for (size_t at = 0; at < text.size() && p.status() == Status::NeedMore; at += step) {
    const std::string piece = text.substr(at, step);
    used += p.feed(piece.data(), piece.size());
  }
  if (eof) p.finish();
  Outcome o;
  o.status = p.status();
  o.error = p.error();
  o.detail = p.detail();
  o.used = used;
  if (p.status() == Status::Complete) {
    o.code = p.statusCode();
    o.body = p.body();
  }
  return o;
}

// Same outcome at every split.
void checkSplits(const std::string& text, bool eof = false) {
  const Outcome whole = run(text, 0, eof);
  for (size_t step = 1; step < text.size(); ++step) {
    const Outcome o = run(text, step, eof);
    if (o.status != whole.status || o.error != whole.error || o.body != whole.body ||
        o.used != whole.used) {
      FAIL("split at " + std::to_string(step) + " differs for " + lapps::test::show(text));
      return;
    }
  }
}

}  // namespace

TEST("http response: Content-Length body, headers lower-cased and joined") {
  const std::string r =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\nSet-Cookie: a=1\r\n\r\nhello";
  HttpResponseParser p;
  p.reset(false);
  CHECK_EQ(p.feed(r.data(), r.size()), r.size());
  REQUIRE(p.status() == Status::Complete);
  CHECK_EQ(p.statusCode(), 200);
  CHECK_EQ(p.reason(), "OK");
  CHECK_EQ(p.body(), "hello");
  CHECK(p.keepAlive());
  REQUIRE(p.headers().size() == 3);
  CHECK_EQ(p.headers()[0].first, "content-length");
  CHECK_EQ(p.headers()[1].first, "x-a");
  CHECK_EQ(p.headers()[1].second, "1, 2");
  checkSplits(r);
}

TEST("http response: bytes after the response are not taken") {
  const std::string r = "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200";
  const Outcome o = run(r);
  CHECK(o.status == Status::Complete);
  CHECK_EQ(o.used, r.size() - 12);
  CHECK_EQ(o.code, 204);
}

TEST("http response: chunked with extensions, trailers, bare LF") {
  const std::string r =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;a=b;c=\"d\"\r\nhello\r\n6 ;x\r\n world\r\n0000\r\nX-T: 1\r\nX-U: 2\r\n\r\n";
  const Outcome o = run(r);
  CHECK(o.status == Status::Complete);
  CHECK_EQ(o.body, "hello world");
  CHECK_EQ(o.used, r.size());
  checkSplits(r);
  const std::string lf = "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n";
  CHECK_EQ(run(lf).body, "abc");
  checkSplits(lf);
}

TEST("http response: bad chunks") {
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const char* bad : {"zz\r\n", "\r\n", "-1\r\n", "5 x\r\nhello\r\n", "3\r\nabcd\r\n",
                          "3\r\nabc\rx", "1\x01\r\n"}) {
    const Outcome o = run(head + bad);
    if (o.status != Status::Failed || o.error != HttpResponseError::Malformed)
      FAIL(std::string("accepted chunk ") + lapps::test::show(std::string(bad)));
  }
  const Outcome big = run(head + "10000000000000000\r\n");
  CHECK(big.error == HttpResponseError::Malformed);
  CHECK_EQ(big.detail, "chunk size overflows");
  const Outcome over = run(head + "ffffffffffffffff\r\n");
  CHECK(over.error == HttpResponseError::BodyTooLarge);
  CHECK(run(head + std::string(5000, '0')).error == HttpResponseError::Malformed);
}

TEST("http response: Content-Length forms") {
  CHECK_EQ(run("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc").body, "abc");
  CHECK_EQ(run("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc").body, "abc");
  for (const char* cl : {"3, 4", "x", "", "-1", "1 2", "+3", "3,"}) {
    const Outcome o = run(std::string("HTTP/1.1 200 OK\r\nContent-Length: ") + cl + "\r\n\r\nabc");
    if (o.error != HttpResponseError::Malformed) FAIL(std::string("accepted Content-Length ") + cl);
  }
  const Outcome of = run("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n");
  CHECK_EQ(of.detail, "Content-Length overflows");
  const Outcome big = run("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551\r\n\r\n");
  CHECK(big.error == HttpResponseError::BodyTooLarge);
  CHECK(run("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n").error ==
        HttpResponseError::Malformed);
  CHECK(run("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").error ==
        HttpResponseError::Malformed);
}

TEST("http response: body limit exactly at and one over") {
  HttpResponseLimits l;
  l.maxBodyBytes = 4;
  CHECK(run("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd", 0, false, false, l).status ==
        Status::Complete);
  CHECK(run("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0, false, false, l).error ==
        HttpResponseError::BodyTooLarge);
  const std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  CHECK(run(chunked + "2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n", 1, false, false, l).status ==
        Status::Complete);
  CHECK(run(chunked + "2\r\nab\r\n3\r\ncde\r\n", 1, false, false, l).error ==
        HttpResponseError::BodyTooLarge);
  const std::string eof = "HTTP/1.1 200 OK\r\n\r\nabcd";
  CHECK(run(eof, 1, true, false, l).status == Status::Complete);
  CHECK(run(eof + "e", 1, true, false, l).error == HttpResponseError::BodyTooLarge);
}

TEST("http response: header limits exactly at and one over") {
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  HttpResponseLimits l;
  l.maxHeaderBytes = head.size();
  CHECK(run(head, 1, false, false, l).status == Status::Complete);
  l.maxHeaderBytes = head.size() - 1;
  CHECK(run(head, 1, false, false, l).error == HttpResponseError::HeadersTooLarge);
  l = {};
  l.maxHeaders = 2;
  CHECK(run("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n", 0, true, false, l).status ==
        Status::Complete);
  CHECK(run("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 0, true, false, l).error ==
        HttpResponseError::HeadersTooLarge);
  // A header with no end: refused once over the limit, whatever comes.
  CHECK(run("HTTP/1.1 200 OK\r\nX: " + std::string(70000, 'a')).error ==
        HttpResponseError::HeadersTooLarge);
}

TEST("http response: malformed heads") {
  for (const char* bad :
       {"HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 x\r\n\r\n", "HTTP/1.1 600 x\r\n\r\n", "HTTP/1.1 200 O\x01K\r\n\r\n",
        "HTTP/1.1 200 OK\r\n folded\r\n\r\n", "HTTP/1.1 200 OK\r\nX : 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: 1\r\n\r\n", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n", "HTTP/1.1 200 OK\rX: 1\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n", "garbage\r\n\r\n"}) {
    const Outcome o = run(bad, 0, true);
    if (o.status != Status::Failed || o.error != HttpResponseError::Malformed)
      FAIL(std::string("accepted ") + lapps::test::show(std::string(bad)));
  }
}

TEST("http response: 1xx skipped, no-body statuses, HEAD, keep-alive rules") {
  const Outcome o =
      run("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  CHECK_EQ(o.code, 200);
  CHECK_EQ(o.body, "ok");
  CHECK_EQ(run("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").code, 304);
  CHECK(run("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", 0, false, true).status ==
        Status::Complete);
  HttpResponseParser p;
  p.reset(false);
  std::string r = "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n";
  p.feed(r.data(), r.size());
  CHECK(p.status() == Status::Complete && !p.keepAlive());
  p.reset(false);
  r = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
  p.feed(r.data(), r.size());
  CHECK(p.status() == Status::Complete && !p.keepAlive());
  p.reset(false);
  r = "HTTP/1.1 200 OK\r\n\r\nrest";
  p.feed(r.data(), r.size());
  CHECK(p.status() == Status::NeedMore);
  p.finish();
  CHECK(p.status() == Status::Complete && !p.keepAlive());
  CHECK_EQ(p.body(), "rest");
}

TEST("http response: closed early, at each stage") {
  CHECK_EQ(run("", 0, true).detail, "connection closed before a response");
  CHECK_EQ(run("HTTP/1.1 2", 0, true).detail, "connection closed in the status line");
  CHECK_EQ(run("HTTP/1.1 200 OK\r\nX: 1", 0, true).detail,
           "connection closed in the header section");
  const Outcome mid = run("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 0, true);
  CHECK(mid.error == HttpResponseError::ClosedEarly);
  CHECK_EQ(mid.detail, "connection closed in the body");
  CHECK(run("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", 0, true).error ==
        HttpResponseError::ClosedEarly);
  CHECK(!HttpResponseParser().started());
}
