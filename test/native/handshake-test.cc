// Opening handshake: request parser and responses.
#include <string>

#include "protocol/handshake-parser.h"
#include "protocol/handshake-response.h"
#include "test.h"

using namespace lapps;
using Status = HandshakeParser::Status;

namespace {

const std::string kKey = "dGhlIHNhbXBsZSBub25jZQ==";

std::string request(const std::string& headers,
                    const std::string& line = "GET /chat?x=1 HTTP/1.1") {
  return line + "\r\n" + headers + "\r\n";
}

std::string validHeaders() {
  return "Host: server.example.com\r\n"
         "Upgrade: websocket\r\n"
         "Connection: Upgrade\r\n"
         "Sec-WebSocket-Key: " +
         kKey +
         "\r\n"
         "Origin: http://example.com\r\n"
         "Sec-WebSocket-Protocol: chat, superchat\r\n"
         "Sec-WebSocket-Extensions: permessage-deflate\r\n"
         "Sec-WebSocket-Version: 13\r\n";
}

// Parses `req` in one go and returns the error (None when complete).
HandshakeError errorOf(const std::string& req, size_t maxBytes = 8192, size_t maxHeaders = 64) {
  HandshakeParser p(maxBytes, maxHeaders);
  const Status s = p.parse(req.data(), req.size());
  if (s == Status::Complete) return HandshakeError::None;
  if (s == Status::Incomplete) return static_cast<HandshakeError>(255);
  return p.error();
}

}  // namespace

TEST("handshake: RFC 6455 example request") {
  const std::string req = request(validHeaders());
  HandshakeParser p;
  REQUIRE_EQ(p.parse(req.data(), req.size()), Status::Complete);
  const HandshakeRequest& r = p.request();
  CHECK_EQ(r.method, "GET");
  CHECK_EQ(r.target, "/chat?x=1");
  CHECK_EQ(p.target(), "/chat?x=1");
  CHECK_EQ(r.host, "server.example.com");
  CHECK_EQ(r.key, kKey);
  CHECK_EQ(r.version, "13");
  CHECK_EQ(r.protocols, "chat, superchat");
  CHECK_EQ(r.origin, "http://example.com");
  CHECK_EQ(r.extensions, "permessage-deflate");
  CHECK_EQ(r.headerBytes, req.size());
  CHECK_EQ(p.error(), HandshakeError::None);
  CHECK_EQ(p.parse(req.data(), req.size()), Status::Complete);  // stays complete
}

TEST("handshake: bytes after the blank line are not part of the header") {
  const std::string req = request(validHeaders());
  const std::string all = req + std::string("\x81\x85\x01\x02\x03\x04hello", 11);
  HandshakeParser p;
  REQUIRE_EQ(p.parse(all.data(), all.size()), Status::Complete);
  CHECK_EQ(p.request().headerBytes, req.size());
}

TEST("handshake: case variants, token lists, bare LF, OWS, leading empty line") {
  const char* variants[] = {
      "host: h\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\n"
      "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n",
      "HOST: h\r\nUPGRADE: WEBSOCKET\r\nCONNECTION: UPGRADE,keep-alive\r\n"
      "SEC-WEBSOCKET-KEY:dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION:13\r\n",
      "Host: h\nUpgrade: h2c, websocket\nConnection: keep-alive\nConnection: upgrade\n"
      "Sec-WebSocket-Key: \t dGhlIHNhbXBsZSBub25jZQ== \t\nSec-WebSocket-Version: 13\n",
      "Host:   h  \r\nUpgrade:websocket\r\nConnection:   close ,  upgrade  \r\n"
      "X-Other: a: b \x80\xff\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n",
  };
  for (const char* h : variants) {
    const std::string req = request(h);
    HandshakeParser p;
    CHECK_EQ(p.parse(req.data(), req.size()), Status::Complete);
    CHECK_EQ(p.request().host, "h");
    CHECK_EQ(p.request().key, kKey);
    CHECK_EQ(p.request().headerBytes, req.size());
  }
  const std::string lf =
      "GET / HTTP/1.1\nHost: h\nUpgrade: websocket\nConnection: Upgrade\n"
      "Sec-WebSocket-Key: " +
      kKey + "\nSec-WebSocket-Version: 13\n\n";
  CHECK_EQ(errorOf(lf), HandshakeError::None);
  CHECK_EQ(errorOf("\r\n" + request(validHeaders())), HandshakeError::None);
  CHECK_EQ(errorOf(request(validHeaders(), "GET / HTTP/1.9")), HandshakeError::None);
}

TEST("handshake: trickled one byte at a time into a growing buffer") {
  const std::string req = request(validHeaders()) + "\x81";
  HandshakeParser p;
  std::string buf;  // reallocates as it grows: the parser must not keep old pointers
  const size_t lineEnd = req.find('\n');
  for (size_t i = 0; i < req.size(); ++i) {
    buf.push_back(req[i]);
    buf.shrink_to_fit();
    const Status s = p.parse(buf.data(), buf.size());
    const bool headerDone = i + 1 >= req.size() - 1;
    if (!CHECK_EQ(s, headerDone ? Status::Complete : Status::Incomplete)) return;
    CHECK_EQ(p.requestLineParsed(), i >= lineEnd);
    if (i >= lineEnd) CHECK_EQ(p.target(), "/chat?x=1");
  }
  CHECK_EQ(p.request().headerBytes, req.size() - 1);
  CHECK_EQ(p.request().key, kKey);
  CHECK_EQ(p.request().protocols, "chat, superchat");
}

TEST("handshake: each error and its HTTP status") {
  using E = HandshakeError;
  const std::string h = validHeaders();
  auto without = [&](const std::string& name) {
    std::string s = h;
    const size_t at = s.find(name);
    s.erase(at, s.find("\r\n", at) + 2 - at);
    return s;
  };
  auto replaced = [&](const std::string& name, const std::string& value) {
    return without(name) + name + ": " + value + "\r\n";
  };
  struct Case {
    std::string req;
    E error;
  };
  const Case cases[] = {
      {request(h, "GET /chat"), E::Malformed},
      {request(h, "GET  /chat HTTP/1.1"), E::Malformed},
      {request(h, "GET /chat HTTP/1.1 "), E::Malformed},
      {request(h, "GET h/chat HTTP/1.1"), E::Malformed},
      {request(h, "GET ftp://h/chat HTTP/1.1"), E::Malformed},
      {request(h, "GET http:/h/chat HTTP/1.1"), E::Malformed},
      {request(h, "GET http:///chat HTTP/1.1"), E::Malformed},
      {request(h, "GET http://user@h/chat HTTP/1.1"), E::Malformed},
      {request(h, "GET http://h#f HTTP/1.1"), E::Malformed},
      {request(h, "GET * HTTP/1.1"), E::Malformed},
      {request(h, "GET /ch\x01t HTTP/1.1"), E::Malformed},
      {request(h, "GET /chat HTTPS/1.1"), E::Malformed},
      {request(h, "GET /chat HTTP/1.10"), E::Malformed},
      {request(h, "G(T /chat HTTP/1.1"), E::Malformed},
      {request(h + "NoColon\r\n"), E::Malformed},
      {request(h + "Bad Name: x\r\n"), E::Malformed},
      {request(h + "X-Space : x\r\n"), E::Malformed},
      {request(h + ": empty name\r\n"), E::Malformed},
      {request(h + "X-Fold: a\r\n  continued\r\n"), E::Malformed},
      {request(h + std::string("X-Nul: a\0b\r\n", 12)), E::Malformed},
      {request(h + "X-Cr: a\rb\r\n"), E::Malformed},
      {request(h + "X-Del: a\x7f\r\n"), E::Malformed},
      {request(h + "Host: again\r\n"), E::RepeatedField},
      {request(h + "host: server.example.com\r\n"), E::RepeatedField},
      {request(h + "Origin: http://example.com\r\n"), E::RepeatedField},
      {request(h + "ORIGIN: http://evil.example\r\n"), E::RepeatedField},
      {request(h + "Origin:\r\n"), E::RepeatedField},
      {request(h, "POST /chat HTTP/1.1"), E::MethodNotAllowed},
      {request(h, "get /chat HTTP/1.1"), E::MethodNotAllowed},
      {request(h, "GET /chat HTTP/1.0"), E::HttpVersion},
      {request(h, "GET /chat HTTP/2.0"), E::HttpVersion},
      {request(h, "GET /chat HTTP/0.9"), E::HttpVersion},
      {request(without("Host")), E::MissingHost},
      {request(replaced("Host", "")), E::MissingHost},
      {request(without("Upgrade")), E::NotWebSocket},
      {request(replaced("Upgrade", "h2c")), E::NotWebSocket},
      {request(replaced("Upgrade", "websocket2")), E::NotWebSocket},
      {request(without("Connection")), E::BadUpgrade},
      {request(replaced("Connection", "keep-alive")), E::BadUpgrade},
      {request(replaced("Connection", "upgrades")), E::BadUpgrade},
      {request(without("Sec-WebSocket-Version")), E::BadVersion},
      {request(replaced("Sec-WebSocket-Version", "8")), E::BadVersion},
      {request(replaced("Sec-WebSocket-Version", "13, 8")), E::BadVersion},
      {request(h + "Sec-WebSocket-Version: 13\r\n"), E::RepeatedField},
      {request(h + "Sec-WebSocket-Version: 8\r\n"), E::RepeatedField},
      {request(without("Sec-WebSocket-Key")), E::BadKey},
      {request(replaced("Sec-WebSocket-Key", "")), E::BadKey},
      {request(replaced("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=")), E::BadKey},
      {request(replaced("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ===")), E::BadKey},
      {request(replaced("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZ===")), E::BadKey},
      {request(replaced("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQAA")), E::BadKey},
      {request(replaced("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25j*Q==")), E::BadKey},
      {request(replaced("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==AAAA")), E::BadKey},
      {request(h + "Sec-WebSocket-Key: " + kKey + "\r\n"), E::RepeatedField},
      // A repeated field fails at once, before the checks of the complete head.
      {request("Host: a\r\nHost: b\r\n"), E::RepeatedField},
      // Checks run in order: method, version, host, upgrade, connection, version 13, key.
      {request("Sec-WebSocket-Version: 7\r\n", "POST / HTTP/1.0"), E::MethodNotAllowed},
      {request("Sec-WebSocket-Version: 7\r\n", "GET / HTTP/1.0"), E::HttpVersion},
      {request("Sec-WebSocket-Version: 7\r\n"), E::MissingHost},
      {request("Host: h\r\nSec-WebSocket-Version: 7\r\nConnection: close\r\n"), E::NotWebSocket},
      {request("Host: h\r\nSec-WebSocket-Version: 7\r\nUpgrade: websocket\r\n"), E::BadUpgrade},
      {request(
           "Host: h\r\nSec-WebSocket-Version: 7\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"),
       E::BadVersion},
  };
  for (const Case& c : cases) {
    if (!CHECK_EQ(errorOf(c.req), c.error)) FAIL("request: " + c.req);
  }
  CHECK_EQ(httpStatusFor(E::Malformed), 400);
  CHECK_EQ(httpStatusFor(E::MissingHost), 400);
  CHECK_EQ(httpStatusFor(E::BadUpgrade), 400);
  CHECK_EQ(httpStatusFor(E::BadKey), 400);
  CHECK_EQ(httpStatusFor(E::MethodNotAllowed), 405);
  CHECK_EQ(httpStatusFor(E::HttpVersion), 505);
  CHECK_EQ(httpStatusFor(E::HeadersTooLarge), 431);
  CHECK_EQ(httpStatusFor(E::TooManyHeaders), 431);
  CHECK_EQ(httpStatusFor(E::NotWebSocket), 426);
  CHECK_EQ(httpStatusFor(E::BadVersion), 426);
  CHECK_EQ(httpStatusFor(E::RepeatedField), 400);
  for (int i = 0; i <= static_cast<int>(E::RepeatedField); ++i)
    CHECK(describe(static_cast<E>(i)) != nullptr && *describe(static_cast<E>(i)) != '\0');
}

TEST("handshake: absolute-form target: routed by its path, host from its authority") {
  struct Case {
    const char* line;
    const char* target;
    const char* host;
  };
  const Case cases[] = {
      {"GET http://127.0.0.1:5083/echo HTTP/1.1", "/echo", "127.0.0.1:5083"},
      {"GET ws://example.com/chat?x=1 HTTP/1.1", "/chat?x=1", "example.com"},
      {"GET WSS://[::1]:8443/a/b HTTP/1.1", "/a/b", "[::1]:8443"},
      {"GET https://example.com HTTP/1.1", "/", "example.com"},
      {"GET Http://example.com?q=1 HTTP/1.1", "/", "example.com"},
  };
  for (const Case& c : cases) {
    // The Host header is still required, and ignored (RFC 9112 §3.2.2).
    const std::string req = request(validHeaders(), c.line);
    HandshakeParser p;
    if (!CHECK_EQ(p.parse(req.data(), req.size()), Status::Complete)) {
      FAIL(std::string("request line: ") + c.line);
      continue;
    }
    CHECK_EQ(p.request().target, std::string_view(c.target));
    CHECK_EQ(p.target(), std::string_view(c.target));
    CHECK_EQ(p.request().host, std::string_view(c.host));
    CHECK_EQ(p.request().origin, "http://example.com");
  }
  // Routing may start as soon as the request line is there.
  HandshakeParser q;
  const std::string line = "GET ws://h:1/route?a HTTP/1.1\r\n";
  CHECK_EQ(q.parse(line.data(), line.size()), Status::Incomplete);
  CHECK(q.requestLineParsed());
  CHECK_EQ(q.target(), "/route?a");
  // Without a Host header it is still a bad request.
  std::string noHost = validHeaders();
  noHost.erase(0, noHost.find("\r\n") + 2);
  CHECK_EQ(errorOf(request(noHost, "GET http://h/chat HTTP/1.1")), HandshakeError::MissingHost);
}

TEST("handshake: failure is sticky and early (request line errors before headers)") {
  HandshakeParser p;
  const std::string line = "POST /x HTTP/1.1\r\n";
  CHECK_EQ(p.parse(line.data(), line.size()), Status::Failed);
  CHECK_EQ(p.error(), HandshakeError::MethodNotAllowed);
  const std::string more = line + validHeaders() + "\r\n";
  CHECK_EQ(p.parse(more.data(), more.size()), Status::Failed);
  CHECK(!p.requestLineParsed());
  // A bad header after a good request line: the target is still there (for logging).
  HandshakeParser q;
  const std::string bad = "GET /route HTTP/1.1\r\nBad Header\r\n";
  CHECK_EQ(q.parse(bad.data(), bad.size()), Status::Failed);
  CHECK_EQ(q.error(), HandshakeError::Malformed);
  CHECK(q.requestLineParsed());
  CHECK_EQ(q.target(), "/route");
}

TEST("handshake: header size limit exactly at and one over") {
  const std::string req = request(validHeaders());
  CHECK_EQ(errorOf(req, req.size()), HandshakeError::None);
  CHECK_EQ(errorOf(req, req.size() - 1), HandshakeError::HeadersTooLarge);
  // Incomplete and under the limit: wait for more; reaching the limit: fail at once.
  const std::string part = req.substr(0, req.size() - 1);
  CHECK_EQ(errorOf(part, req.size()), static_cast<HandshakeError>(255));
  CHECK_EQ(errorOf(part, req.size() - 1), HandshakeError::HeadersTooLarge);
  // The limit also bounds a request line that never ends.
  CHECK_EQ(errorOf("GET /" + std::string(100, 'a'), 64), HandshakeError::HeadersTooLarge);
  // Bytes after the blank line do not count.
  CHECK_EQ(errorOf(req + std::string(1000, 'x'), req.size()), HandshakeError::None);
}

TEST("handshake: header count limit exactly at and one over") {
  // validHeaders() has 8 header lines.
  CHECK_EQ(errorOf(request(validHeaders()), 8192, 8), HandshakeError::None);
  CHECK_EQ(errorOf(request(validHeaders()), 8192, 7), HandshakeError::TooManyHeaders);
  CHECK_EQ(errorOf(request(validHeaders() + "A: 1\r\nB: 2\r\n"), 8192, 10), HandshakeError::None);
}

TEST("handshake response: accept key from RFC 6455") {
  CHECK_EQ(acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  CHECK_EQ(acceptKey(std::string(100, 'k')).size(), size_t{28});
}

TEST("handshake response: 101 Switching Protocols") {
  std::string out = "prefix|";
  appendSwitchingProtocols(out, kKey, "");
  CHECK_EQ(out,
           "prefix|HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
           "Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
  std::string withProto;
  appendSwitchingProtocols(withProto, kKey, "chat");
  CHECK(withProto.find("\r\nSec-WebSocket-Protocol: chat\r\n\r\n") != std::string::npos);
}

TEST("handshake response: extra headers go before the blank line") {
  std::string out;
  appendSwitchingProtocols(out, kKey, "v2.chat", "X-Served-By: lapps\r\nX-Region: eu\r\n");
  CHECK(out.find("\r\nSec-WebSocket-Protocol: v2.chat\r\nX-Served-By: lapps\r\n"
                 "X-Region: eu\r\n\r\n") != std::string::npos);
}

TEST("handshake response: subprotocol selection follows the service's preference") {
  const std::vector<std::string> accepted{"v2.chat", "v1.chat"};
  CHECK_EQ(selectSubprotocol("v1.chat, v2.chat", accepted), std::string_view("v2.chat"));
  CHECK_EQ(selectSubprotocol("v1.chat", accepted), std::string_view("v1.chat"));
  CHECK_EQ(selectSubprotocol(" \tv1.chat\t ,x", accepted), std::string_view("v1.chat"));
  CHECK_EQ(selectSubprotocol("V2.CHAT", accepted), std::string_view());  // case-sensitive
  CHECK_EQ(selectSubprotocol("", accepted), std::string_view());
  CHECK_EQ(selectSubprotocol("v2.chatx,xv2.chat", accepted), std::string_view());
  CHECK_EQ(selectSubprotocol("v2.chat", {}), std::string_view());
}

TEST("handshake response: HTTP errors") {
  std::string out;
  appendHttpError(out, 400, "malformed HTTP request");
  CHECK_EQ(out,
           "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "Content-Length: 22\r\nConnection: close\r\n\r\nmalformed HTTP request");
  std::string up;
  appendHttpError(up, 426, describe(HandshakeError::NotWebSocket));
  CHECK(up.rfind("HTTP/1.1 426 Upgrade Required\r\n", 0) == 0);
  CHECK(up.find("\r\nUpgrade: websocket\r\n") != std::string::npos);
  CHECK(up.find("\r\nSec-WebSocket-Version: 13\r\n") != std::string::npos);
  const std::string body = describe(HandshakeError::NotWebSocket);
  CHECK(up.find("Content-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos);
  CHECK_EQ(up.substr(up.size() - body.size()), body);
  std::string m;
  appendHttpError(m, 405, "");
  CHECK(m.find("\r\nAllow: GET\r\n") != std::string::npos);
  CHECK(m.find("Content-Length: 0\r\n") != std::string::npos);
  for (int s : {431, 505, 500, 503, 403, 404}) CHECK(std::string(reasonPhrase(s)) != "Error");
}
