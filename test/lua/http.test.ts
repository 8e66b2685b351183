/**
 * lapps.http from a Lua service against real HTTP servers on 127.0.0.1 (Node's http and
 * https modules, and raw sockets for what they would not send): keep-alive reuse, chunked
 * bodies, a slow server (the timeout fires, the worker goes on serving), a huge response
 * (refused, bounded), a refused connection, TLS with a wrong host name, a server that
 * closes mid-body, a malformed response, misuse.
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import type WebSocket from 'ws';

import { testPki } from '../helpers/pki.js';
import { repoRoot, startTestServer } from '../helpers/server.js';
import { ask, nextMessage, openWs } from '../helpers/ws.js';

const service = {
  name: 'httpclient',
  request_target: '/http',
  source: path.join(repoRoot, 'test', 'lua', 'services', 'http', 'httpclient.lua'),
  instances: 1,
};

interface Reply {
  ok: boolean;
  status?: number;
  length?: number;
  headers?: Record<string, string>;
  body?: string;
  err?: string;
  idle: number;
}

async function request(
  ws: WebSocket,
  url: string,
  o: { method?: string; timeout?: number; max?: number; ca?: string; body?: string } = {},
  headers: Record<string, string> = {},
): Promise<Reply> {
  const fields = [
    'req',
    o.method ?? '',
    url,
    o.timeout === undefined ? '' : String(o.timeout),
    o.max === undefined ? '' : String(o.max),
    o.ca ?? '',
    o.body ?? '',
    ...Object.entries(headers).flat(),
  ];
  const f = (await ask(ws, fields.join('\t'))).split('\t');
  if (f[0] === 'err') return { ok: false, err: f[1], idle: Number(f[2]) };
  const hs: Record<string, string> = {};
  for (const kv of f[3] ? f[3].split('|') : []) {
    hs[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
  }
  return {
    ok: true,
    status: Number(f[1]),
    length: Number(f[2]),
    headers: hs,
    body: f[4],
    idle: Number(f[5]),
  };
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)),
  );
}

async function setup(t: Test): Promise<{ ws: WebSocket; logClean: () => void }> {
  const server = await startTestServer({ workers: 1, services: [service] });
  t.teardown(() => server.stop());
  const ws = await openWs(server.url('/http'));
  t.teardown(() => ws.close());
  return { ws, logClean: () => void t.same(server.errors(), [], 'no error in the log') };
}

t.test('GET, POST, headers, keep-alive reuse, Connection: close', async (t) => {
  const sockets = new Set<net.Socket>();
  const srv = http.createServer((req, res) => {
    sockets.add(req.socket);
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.url === '/close') res.setHeader('Connection', 'close');
      res.setHeader('X-Multi', ['a', 'b']);
      res.setHeader('Content-Type', 'text/plain');
      res.end(
        `${req.method} ${req.url} ${req.headers['content-length'] ?? '-'} ` +
          `${req.headers['x-token'] ?? '-'} ${req.headers.host} ${body}`,
      );
    });
  });
  const port = await listen(srv);
  t.teardown(() => srv.close());
  const { ws, logClean } = await setup(t);
  const base = `http://127.0.0.1:${port}`;

  const a = await request(ws, `${base}/one?x=1#frag`, {}, { 'X-Token': 'abc' });
  t.same(
    [a.status, a.body, a.headers?.['x-multi'], a.headers?.['content-type']],
    [200, `GET /one?x=1 - abc 127.0.0.1:${port} `, 'a, b', 'text/plain'],
    'GET: status, body, repeated header joined, names lower-cased, no fragment sent',
  );
  t.equal(a.idle, 1, 'the connection waits in the pool');
  const b = await request(ws, `${base}/two`, { body: 'hello' });
  t.equal(b.body, `POST /two 5 - 127.0.0.1:${port} hello`, 'POST with Content-Length');
  t.equal(sockets.size, 1, 'the server saw one socket for both requests');
  const c = await request(ws, `${base}/close`);
  t.equal(c.status, 200);
  t.equal(c.idle, 0, 'Connection: close from the server: not pooled');
  await request(ws, `${base}/three`);
  t.equal(sockets.size, 2, 'a new connection after close');
  const d = await request(ws, `${base}/four`, {}, { Connection: 'close' });
  t.same([d.status, d.idle], [200, 0], 'Connection: close from the caller: not pooled');
  const head = await request(ws, `${base}/h`, { method: 'HEAD' });
  t.same([head.status, head.length], [200, 0], 'HEAD: no body though Content-Length says');
  const after = await request(ws, `${base}/after-head`);
  t.match(after.body, /^GET \/after-head/, 'the connection is fine after HEAD');
  logClean();
});

t.test('a pooled connection the server closed is replaced', async (t) => {
  const srv = http.createServer((req, res) => res.end('ok'));
  srv.keepAliveTimeout = 100;
  const port = await listen(srv);
  t.teardown(() => srv.close());
  const { ws, logClean } = await setup(t);
  const a = await request(ws, `http://127.0.0.1:${port}/`);
  t.equal(a.idle, 1);
  await new Promise((r) => setTimeout(r, 400));
  const b = await request(ws, `http://127.0.0.1:${port}/`);
  t.same([b.ok, b.body, b.idle], [true, 'ok', 1], 'answered over a new connection');
  logClean();
});

t.test('chunked bodies, with extensions and trailers', async (t) => {
  const srv = http.createServer((req, res) => {
    res.setHeader('Trailer', 'X-Sum');
    res.write('x'.repeat(20000));
    res.write('tail');
    res.addTrailers({ 'X-Sum': '20004' });
    res.end();
  });
  const port = await listen(srv);
  const raw = net.createServer((s) =>
    s.once('data', () =>
      s.end(
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
          '5;name=value\r\nhello\r\n6\n world\n0\r\nX-After: 1\r\n\r\n',
      ),
    ),
  );
  const rawPort = await listen(raw);
  t.teardown(() => {
    srv.close();
    raw.close();
  });
  const { ws, logClean } = await setup(t);
  const a = await request(ws, `http://127.0.0.1:${port}/`);
  t.same([a.status, a.length, a.headers?.['transfer-encoding']], [200, 20004, 'chunked']);
  const b = await request(ws, `http://127.0.0.1:${rawPort}/`);
  t.same([b.status, b.body], [200, 'hello world'], 'extensions skipped, bare LF accepted');
  logClean();
});

t.test('slow server: the timeout fires, the worker serves others meanwhile', async (t) => {
  const open: net.Socket[] = [];
  const srv = net.createServer((s) => {
    open.push(s);
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
      const timer = setInterval(() => s.write('x'), 100);
      s.on('close', () => clearInterval(timer));
      s.on('error', () => clearInterval(timer));
    });
  });
  const port = await listen(srv);
  t.teardown(() => {
    for (const s of open) s.destroy();
    srv.close();
  });
  const { ws, logClean } = await setup(t);
  const other = await openWs(ws.url);
  t.teardown(() => other.close());
  const started = Date.now();
  const pending = request(ws, `http://127.0.0.1:${port}/`, { timeout: 1.5 });
  await new Promise((r) => setTimeout(r, 200));
  t.equal(await ask(other, 'hi'), 'echo hi', 'another connection is served meanwhile');
  const r = await pending;
  t.same([r.ok, r.err], [false, 'timeout']);
  t.ok(Date.now() - started >= 1400, 'after the timeout, not before');
  await new Promise((r2) => setTimeout(r2, 200));
  t.ok(open[0]?.destroyed || open[0]?.readableEnded, 'the abandoned connection was closed');
  logClean();
});

t.test('huge responses are refused and memory stays bounded', async (t) => {
  const srv = net.createServer((s) =>
    s.once('data', (d) => {
      if (d.toString().startsWith('GET /declared')) {
        s.end('HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n');
        return;
      }
      if (d.toString().startsWith('GET /header')) {
        s.write('HTTP/1.1 200 OK\r\n');
        const pump = (): void => {
          while (s.writable && s.write(`X-Fill: ${'y'.repeat(1000)}\r\n`));
        };
        s.on('drain', pump);
        s.on('error', () => {});
        pump();
        return;
      }
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
      const chunk = `10000\r\n${'z'.repeat(0x10000)}\r\n`;
      const pump = (): void => {
        while (s.writable && s.write(chunk));
      };
      s.on('drain', pump);
      s.on('error', () => {});
      pump();
    }),
  );
  const port = await listen(srv);
  t.teardown(() => srv.close());
  const { ws, logClean } = await setup(t);
  const a = await request(ws, `http://127.0.0.1:${port}/declared`);
  t.same([a.ok, a.err], [false, 'response too large: Content-Length over the limit']);
  const b = await request(ws, `http://127.0.0.1:${port}/stream`, { max: 1 << 20, timeout: 20 });
  t.same([b.ok, b.err], [false, 'response too large: body over the limit'], 'endless chunked');
  const c = await request(ws, `http://127.0.0.1:${port}/header`, { timeout: 20 });
  t.same([c.ok, c.err], [false, 'response too large: header section over the limit']);
  const ok = await request(ws, `http://127.0.0.1:${port}/declared`, { max: 1e12 });
  t.equal(ok.ok, false, 'a declared 100 GB body under a raised limit allocates nothing up front');
  logClean();
});

t.test('refused connection, malformed response, closed mid-body', async (t) => {
  const closedPort = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const srv = net.createServer((s) =>
    s.once('data', (d) => {
      const line = d.toString();
      if (line.startsWith('GET /garbage')) s.end('HELLO\r\n\r\n');
      else if (line.startsWith('GET /badchunk')) {
        s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
      } else if (line.startsWith('GET /eof')) s.end('HTTP/1.0 200 OK\r\n\r\nuntil close');
      else s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b');
    }),
  );
  const port = await listen(srv);
  t.teardown(() => srv.close());
  const { ws, logClean } = await setup(t);
  const a = await request(ws, `http://127.0.0.1:${closedPort}/`);
  t.match(a.err, /^connect to 127\.0\.0\.1:\d+ failed: Connection refused$/);
  const b = await request(ws, `http://127.0.0.1:${port}/garbage`);
  t.equal(b.err, 'malformed response: bad status line');
  const c = await request(ws, `http://127.0.0.1:${port}/badchunk`);
  t.equal(c.err, 'malformed response: bad chunk size');
  const d = await request(ws, `http://127.0.0.1:${port}/mid`);
  t.equal(d.err, 'closed early: connection closed in the body');
  const e = await request(ws, `http://127.0.0.1:${port}/eof`);
  t.same([e.status, e.body, e.idle], [200, 'until close', 0], 'a body read until close');
  const f = await request(ws, 'http://no-such-host.invalid/');
  t.match(f.err, /^cannot resolve 'no-such-host\.invalid'/);
  const g = await request(ws, 'ftp://x/');
  t.equal(g.err, "unsupported URL scheme 'ftp' (expected http or https)");
  logClean();
});

t.test('https: verification as lapps.websocket does it', async (t) => {
  // The test PKI: "localhost" and "other.test", both signed by its CA.
  const pki = testPki();
  const read = (f: string): Buffer => readFileSync(f);
  const a = https.createServer(
    { key: read(pki.serverKey), cert: read(pki.serverCert) },
    (req, res) => res.end('tls'),
  );
  const b = https.createServer({ key: read(pki.otherKey), cert: read(pki.otherCert) }, (req, res) =>
    res.end('no'),
  );
  const pa = await listen(a);
  const pb = await listen(b);
  t.teardown(() => {
    a.close();
    b.close();
  });
  const { ws, logClean } = await setup(t);
  const untrusted = await request(ws, `https://localhost:${pa}/`);
  t.match(untrusted.err, /^TLS certificate verification failed: unable to get local issuer/i);
  const ok = await request(ws, `https://localhost:${pa}/`, { ca: pki.ca });
  t.same([ok.status, ok.body], [200, 'tls'], 'trusted with ca');
  const again = await request(ws, `https://localhost:${pa}/`, { ca: pki.ca });
  t.same([again.body, again.idle], ['tls', 1], 'kept alive over TLS');
  const mismatch = await request(ws, `https://localhost:${pb}/`, { ca: pki.ca });
  t.match(mismatch.err, /^TLS certificate verification failed: hostname mismatch/i);
  logClean();
});

t.test('misuse raises a Lua error', async (t) => {
  const { ws, logClean } = await setup(t);
  t.match(
    await ask(ws, 'misuse\tContent-Length\t5'),
    /^false .*Content-Length is set by lapps\.http/,
  );
  t.match(await ask(ws, 'misuse\tX-Bad\ta\rb'), /^false .*without CR, LF or NUL/);
  t.match(await ask(ws, 'misuse\tBad Name\tv'), /^false .*bad header name/);
  // The service is still up.
  const reply = nextMessage(ws);
  ws.send('still');
  t.equal(await reply, 'echo still');
  logClean();
});
