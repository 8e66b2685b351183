/**
 * onConnect through a real server: every request field (method, target, path, query and
 * args with repeated keys, headers with repeated fields joined, cookies, ip and port over
 * IPv4 and IPv6, origin, the chosen subprotocol, TLS with a client certificate), accept,
 * accept with a user value, refuse with a status and a reason, the default refusal, an
 * onConnect that errors, returns nonsense, waits, waits past handshake_timeout_ms, or
 * loops; frames sent before the 101 arriving while it waits; ws:info.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import WebSocket from 'ws';
import { Decoder, Encoder } from 'cbor-x';

import { repoRoot, startTestServer, type TestServer } from '../helpers/server.js';
import { testPki } from '../helpers/pki.js';
import { ask, handshakeAnswer, openWs, until } from '../helpers/ws.js';
import { encodeFrame, handshakeRequest, scaled } from '../helpers/raw-client.js';

const source = path.join(repoRoot, 'test', 'lua', 'services', 'connect', 'connect.lua');

interface RawAnswer {
  status: number;
  head: string;
  body: string;
  rest: Buffer;
}

/** Sends `bytes` (a request and whatever follows), reads until the server closes or `until`. */
function rawExchange(
  port: number,
  bytes: (Buffer | string)[],
  opts: { host?: string; gapMs?: number; enough?: (b: Buffer) => boolean } = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, opts.host ?? '127.0.0.1');
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer; got ${JSON.stringify(got.toString('latin1'))}`));
    }, scaled(8000));
    const finish = (): void => {
      clearTimeout(timer);
      sock.destroy();
      const text = got.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const head = end < 0 ? text : text.slice(0, end);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      const m = /content-length: (\d+)/i.exec(head);
      const bodyLen = m ? Number(m[1]) : 0;
      const body = end < 0 ? '' : got.subarray(end + 4, end + 4 + bodyLen).toString();
      resolve({
        status,
        head,
        body,
        rest: end < 0 ? Buffer.alloc(0) : got.subarray(end + 4 + bodyLen),
      });
    };
    sock.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (opts.enough?.(got)) finish();
    });
    sock.on('close', finish);
    sock.on('error', () => {});
    sock.on('connect', async () => {
      for (const [i, b] of bytes.entries()) {
        if (i > 0 && opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
        sock.write(b);
      }
    });
  });
}

let server: TestServer;
t.before(async () => {
  server = await startTestServer({
    workers: 2,
    limits: { handshake_timeout_ms: 1500 },
    listeners: [
      { host: '127.0.0.1', port: 0 },
      { host: '::1', port: 0 },
    ],
    services: [
      {
        name: 'connect',
        request_target: '/connect',
        source,
        instances: 2,
        handler_timeout_ms: 300,
        protocol: 'raw',
        subprotocols: ['chat.v2', 'chat.v1'],
        origins: ['http://app.example'],
      },
      {
        name: 'echo',
        request_target: '/echo',
        source: path.join(repoRoot, 'services', 'echo', 'echo.lua'),
        instances: 1,
      },
    ],
  });
});
t.teardown(() => server?.stop());

const url = (q: string): string => `ws://127.0.0.1:${server.ports[0]}/connect?${q}`;

t.test('every request field reaches onConnect', async (t) => {
  const ws = await openWs(
    `ws://127.0.0.1:${server.ports[0]}/connect?mode=accept&a=1&a=2&a=3&sp=x+y%20z&empty&u=%E2%9C%93&=v`,
    5000,
    {
      headers: {
        Cookie: 'sid=abc123; theme="dark"; sid=second; broken',
        'X-Multi': 'one',
        Origin: 'http://app.example',
      },
      protocol: undefined,
    },
  );
  const req = JSON.parse(await ask(ws, 'request')) as Record<string, unknown>;
  t.equal(req.method, 'GET');
  t.equal(
    req.target,
    '/connect?mode=accept&a=1&a=2&a=3&sp=x+y%20z&empty&u=%E2%9C%93&=v',
    'target as sent',
  );
  t.equal(req.path, '/connect');
  t.equal(req.query, 'mode=accept&a=1&a=2&a=3&sp=x+y%20z&empty&u=%E2%9C%93&=v', 'query raw');
  t.same(
    req.args,
    { mode: 'accept', a: ['1', '2', '3'], sp: 'x y z', empty: '', u: '✓', '': 'v' },
    'args decoded; repeated keys as an array',
  );
  const headers = req.headers as Record<string, string>;
  t.equal(headers['x-multi'], 'one', 'names are lower case');
  t.equal(headers.host, `127.0.0.1:${server.ports[0]}`);
  t.equal(headers.upgrade, 'websocket');
  t.same(req.cookies, { sid: 'abc123', theme: 'dark' }, 'cookies parsed; the first of a name wins');
  t.equal(req.origin, 'http://app.example');
  t.equal(req.ip, '127.0.0.1');
  t.equal(
    req.port,
    (ws as unknown as { _socket: net.Socket })._socket.localPort,
    'the client port',
  );
  t.equal(req.subprotocol, undefined, 'no subprotocol offered: none');
  t.equal(req.tls, undefined, 'plain ws: no tls');
  ws.close();
});

t.test('repeated headers are joined; the chosen subprotocol; IPv6', async (t) => {
  const raw = await rawExchange(
    server.ports[1]!,
    [
      handshakeRequest({
        path: '/connect?mode=accept',
        extra: [
          'X-Multi: one',
          'x-multi: two',
          'X-MULTI:  three  ',
          'Sec-WebSocket-Protocol: chat.v1, chat.v2',
        ],
      }),
      encodeFrame({ opcode: 1, payload: 'request' }),
    ],
    { host: '::1', enough: (b) => b.includes('"method"') && b.toString().trimEnd().endsWith('}') },
  );
  t.equal(raw.status, 101);
  t.match(
    raw.head,
    /sec-websocket-protocol: chat\.v2/i,
    "the service's first preference that the client offered",
  );
  const text = raw.rest.subarray(raw.rest.indexOf('{')).toString();
  const req = JSON.parse(text) as Record<string, unknown>;
  t.equal((req.headers as Record<string, string>)['x-multi'], 'one, two, three');
  t.equal(req.subprotocol, 'chat.v2', 'the subprotocol the 101 names');
  t.equal(req.ip, '::1', 'an IPv6 client');
});

t.test('accept, user values, ws:info', async (t) => {
  const ws = await openWs(url('mode=user&user=alice'));
  const info = JSON.parse(await ask(ws, 'info')) as Record<string, unknown>;
  t.equal(info.user, 'alice', 'the user value onConnect attached');
  t.equal(info.ip, '127.0.0.1');
  t.equal(info.path, '/connect');
  t.equal(info.query, 'mode=user&user=alice');
  t.equal(info.service, 'connect');
  t.type(info.port, 'number');

  const n = await openWs(url('mode=number'));
  t.equal((JSON.parse(await ask(n, 'info')) as { user: number }).user, 42.5, 'a number user');
  // ws:info of another connection of the service, possibly on the other worker.
  const handle = await ask(n, 'handler');
  const other = JSON.parse(await ask(ws, `info ${handle}`)) as Record<string, unknown>;
  t.equal(other.user, 42.5, "ws:info reads another connection's info");
  t.equal(other.query, 'mode=number');
  const plain = await openWs(url('mode=nothing'));
  const pi = JSON.parse(await ask(plain, 'info')) as Record<string, unknown>;
  t.equal(pi.user, undefined, 'returning nothing accepts, without a user');
  const bogus = JSON.parse(await ask(ws, 'info 123456')) as Record<string, unknown>;
  t.equal(bogus.err, 'no such connection');
  const gone = await ask(plain, 'handler');
  plain.close();
  await new Promise((r) => setTimeout(r, 200));
  t.equal(
    (JSON.parse(await ask(ws, `info ${gone}`)) as { err: string }).err,
    'no such connection',
    'a closed connection is gone',
  );
  ws.close();
  n.close();
});

t.test('refusals: status and reason, the default, errors, nonsense', async (t) => {
  const port = server.ports[0]!;
  const refuse = await rawExchange(port, [
    handshakeRequest({ path: '/connect?mode=refuse&status=401&reason=bad%20token' }),
  ]);
  t.equal(refuse.status, 401);
  t.equal(refuse.body, 'bad token', 'the reason is the body');
  const def = await rawExchange(port, [handshakeRequest({ path: '/connect?mode=default' })]);
  t.equal(def.status, 403, 'false alone: 403');
  t.equal(def.body, 'Forbidden');
  const before = server.errors().length;
  const err = await rawExchange(port, [handshakeRequest({ path: '/connect?mode=error' })]);
  t.equal(err.status, 500, 'a Lua error: 500');
  t.equal(err.body, 'internal error', 'the error text stays in the log');
  await until(() =>
    server
      .errors()
      .slice(before)
      .some((m) => m.includes('boom in onConnect')),
  );
  for (const mode of ['badstatus', 'badreturn', 'baduser', 'hugeuser']) {
    const r = await rawExchange(port, [handshakeRequest({ path: `/connect?mode=${mode}` })]);
    t.equal(r.status, 500, `${mode}: 500`);
  }
  await until(() =>
    server
      .errors()
      .some((m) => m.includes("a refusal's status must be an integer from 400 to 599")),
  );
  t.ok(server.errors().some((m) => m.includes('the user value must be a string or a number')));
  t.ok(server.errors().some((m) => m.includes('at most 4096 may be kept')));
  const unknown = await rawExchange(port, [handshakeRequest({ path: '/connect?mode=nosuch' })]);
  t.equal(unknown.status, 400);
  t.equal(unknown.body, 'unknown mode');
  // A header decides.
  const h = await rawExchange(
    port,
    [handshakeRequest({ path: '/connect?mode=header', extra: ['X-Token: open sesame'] })],
    { enough: (b) => b.includes('\r\n\r\n') },
  );
  t.equal(h.status, 101, 'the right header: accepted');
  const h2 = await rawExchange(port, [handshakeRequest({ path: '/connect?mode=header' })]);
  t.equal(h2.status, 403, 'without it: refused');
  t.ok(server.counters().connect_refused >= 8, 'refusals counted');
  // The server still serves.
  const ws = await openWs(url('mode=accept'));
  t.equal(await ask(ws, 'ping'), 'ping');
  ws.close();
});

t.test('an onConnect that waits; frames sent before the 101 are kept', async (t) => {
  const port = server.ports[0]!;
  const frames = [
    encodeFrame({ opcode: 1, payload: 'early-1' }),
    encodeFrame({ opcode: 1, payload: 'early-2' }),
  ];
  const r = await rawExchange(
    port,
    [handshakeRequest({ path: '/connect?mode=sleep&ms=300' }) + '', frames[0]!, frames[1]!],
    { gapMs: 50, enough: (b) => b.includes('early-2') },
  );
  t.equal(r.status, 101, 'accepted after the wait');
  t.ok(r.rest.includes('early-1') && r.rest.includes('early-2'), 'both frames echoed, in order');
  t.ok(r.rest.indexOf('early-1') < r.rest.indexOf('early-2'));
  // Many at once while each waits: the worker serves others meanwhile (the echo answers
  // before any of the waiting handshakes has been answered).
  let opened = 0;
  const waiting = Array.from({ length: 20 }, () =>
    openWs(url('mode=sleep&ms=1000')).then((w) => {
      opened++;
      return w;
    }),
  );
  const echo = await openWs(`ws://127.0.0.1:${port}/echo`);
  t.equal(await ask(echo, 'quick'), 'quick', 'another service is served while onConnects wait');
  t.equal(opened, 0, 'before any waiting handshake was answered');
  const all = await Promise.all(waiting);
  const infos = await Promise.all(
    all.map(async (w) => JSON.parse(await ask(w, 'info')) as { user: string }),
  );
  t.ok(
    infos.every((i) => i.user === 'slept 1000'),
    'each got its own user value',
  );
  all.forEach((w) => w.close());
  echo.close();
  const late = await rawExchange(port, [
    handshakeRequest({ path: '/connect?mode=sleeprefuse&ms=100' }),
  ]);
  t.equal(late.status, 401, 'a refusal after a wait');
  t.equal(late.body, 'token expired');
  const lateErr = await rawExchange(port, [handshakeRequest({ path: '/connect?mode=sleeperror' })]);
  t.equal(lateErr.status, 500, 'an error after a wait');
});

t.test(
  'a client that sends far more than the handshake buffer while onConnect waits',
  async (t) => {
    const port = server.ports[0]!;
    // 2,000 frames of 40 bytes: 80 KB, ten times the handshake buffer. Reading pauses when
    // the buffer is full; nothing is lost, and all of it is echoed in order after the 101.
    const frames = Array.from({ length: 2000 }, (_, i) =>
      encodeFrame({ opcode: 1, payload: `m${String(i).padStart(38, '0')}` }),
    );
    const last = `m${String(1999).padStart(38, '0')}`;
    const r = await rawExchange(
      port,
      [handshakeRequest({ path: '/connect?mode=sleep&ms=300' }), Buffer.concat(frames)],
      { enough: (b) => b.includes(last) },
    );
    t.equal(r.status, 101);
    const text = r.rest.toString('latin1');
    let at = -1;
    let inOrder = true;
    for (let i = 0; i < 2000; i += 97) {
      const next = text.indexOf(`m${String(i).padStart(38, '0')}`);
      if (next <= at) inOrder = false;
      at = next;
    }
    t.ok(inOrder, 'every frame echoed, in order');
  },
);

t.test('an onConnect that outlives the handshake timeout, or loops', async (t) => {
  const port = server.ports[0]!;
  const before = server.counters().connect_timeouts;
  const r = await rawExchange(port, [handshakeRequest({ path: '/connect?mode=sleep&ms=5000' })]);
  t.equal(r.status, 503, 'handshake_timeout_ms: 503');
  t.match(r.body, /did not answer in time/);
  t.equal(server.counters().connect_timeouts, before + 1, 'counted');
  const loop = await rawExchange(port, [handshakeRequest({ path: '/connect?mode=loop' })]);
  t.equal(loop.status, 500, 'stopped by handler_timeout_ms: 500');
  const ws = await openWs(url('mode=accept'));
  t.equal(await ask(ws, 'still'), 'still', 'the instance serves after being recycled');
  ws.close();
});

t.test('a client that leaves while onConnect waits', async (t) => {
  const port = server.ports[0]!;
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  sock.write(handshakeRequest({ path: '/connect?mode=sleep&ms=300' }));
  await new Promise((r) => setTimeout(r, 50));
  sock.destroy();
  await new Promise((r) => setTimeout(r, 500));
  const ws = await openWs(url('mode=accept'));
  t.equal(await ask(ws, 'ok'), 'ok', 'nothing broke');
  ws.close();
});

t.test('TLS: version, cipher, SNI and the client certificate', async (t) => {
  const pki = testPki();
  const tlsServer = await startTestServer({
    workers: 1,
    tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, client_cert: 'optional' },
    services: [{ name: 'connect', request_target: '/connect', source, instances: 1 }],
  });
  t.teardown(() => tlsServer.stop());
  const withCert = await openWs(`wss://localhost:${tlsServer.port}/connect?mode=accept`, 5000, {
    ca: pki.caPem,
    cert: readFileSync(pki.clientCert),
    key: readFileSync(pki.clientKey),
  });
  const req = JSON.parse(await ask(withCert, 'request')) as { tls: Record<string, string> };
  const peer = (
    withCert as unknown as { _socket: import('node:tls').TLSSocket }
  )._socket.getPeerCertificate();
  const mine = (withCert as unknown as { _socket: import('node:tls').TLSSocket })._socket;
  t.equal(req.tls.version, mine.getProtocol(), 'the protocol version');
  t.equal(req.tls.cipher, mine.getCipher().name, 'the cipher (OpenSSL names it)');
  t.equal(req.tls.sni, 'localhost', 'the SNI name');
  t.ok(peer, 'server certificate seen');
  const { X509Certificate } = await import('node:crypto');
  const client = new X509Certificate(readFileSync(pki.clientCert));
  t.equal(req.tls.fingerprint, client.fingerprint256, 'the SHA-256 fingerprint, as Node prints it');
  t.match(req.tls.subject, /CN=/, 'the subject');
  t.match(req.tls.issuer, /CN=/, 'the issuer');
  withCert.close();
  const noCert = await openWs(`wss://localhost:${tlsServer.port}/connect?mode=accept`, 5000, {
    ca: pki.caPem,
  });
  const r2 = JSON.parse(await ask(noCert, 'request')) as { tls: Record<string, string> };
  t.type(r2.tls.version, 'string');
  t.equal(r2.tls.fingerprint, undefined, 'no certificate sent: no certificate fields');
  noCert.close();
  // Over TLS too, frames sent while onConnect waits are kept (OpenSSL holds what the
  // handshake buffer cannot).
  const frames = Array.from({ length: 1000 }, (_, i) =>
    encodeFrame({ opcode: 1, payload: `t${String(i).padStart(38, '0')}` }),
  );
  const last = `t${String(999).padStart(38, '0')}`;
  const echoed = await new Promise<string>((resolve, reject) => {
    const sock = tls.connect({
      port: tlsServer.port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca: pki.caPem,
    });
    let got = '';
    const timer = setTimeout(() => reject(new Error(`tls: got ${got.length} bytes`)), scaled(8000));
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes(last)) {
        clearTimeout(timer);
        sock.destroy();
        resolve(got);
      }
    });
    sock.on('error', reject);
    sock.on('secureConnect', () => {
      sock.write(handshakeRequest({ path: '/connect?mode=sleep&ms=200' }));
      sock.write(Buffer.concat(frames));
    });
  });
  t.match(echoed, /^HTTP\/1\.1 101/, 'wss: accepted after the wait');
  t.ok(echoed.indexOf(`t${'0'.repeat(38)}`) < echoed.indexOf(last), 'wss: every frame, in order');
});

t.test('a service without onConnect is unaffected', async (t) => {
  const ws = new WebSocket(`ws://127.0.0.1:${server.ports[0]}/echo`);
  await new Promise((r) => ws.once('open', r));
  t.equal(await ask(ws, 'x'), 'x');
  ws.close();
});

t.test('a LAppS protocol service signs clients in with onConnect', async (t) => {
  const enc = new Encoder({ useRecords: false, mapsAsObjects: true });
  const dec = new Decoder({ useRecords: false, mapsAsObjects: true });
  const lappsServer = await startTestServer({
    workers: 1,
    services: [
      {
        name: 'connect_lapps',
        request_target: '/lapps',
        protocol: 'lapps',
        source: path.join(repoRoot, 'test', 'lua', 'services', 'connect', 'connect_lapps.lua'),
        instances: 1,
      },
    ],
  });
  t.teardown(() => lappsServer.stop());
  const refused = await handshakeAnswer(lappsServer.port, '/lapps');
  t.equal(refused.status, 401);
  t.equal(refused.body, 'token required');
  const ws = await openWs(lappsServer.url('/lapps?token=let-me-in&nick=alice'));
  const answer = new Promise<unknown>((resolve) =>
    ws.once('message', (d: Buffer) => resolve(dec.decode(d))),
  );
  ws.send(enc.encode({ lapps: 1, method: 'whoami' }));
  t.same(await answer, { cid: 0, status: 1, result: ['alice', '/lapps'] });
  ws.close();
});

t.test(
  'behind a trusted proxy: onConnect, ws:info and the access log see the client',
  async (t) => {
    const proxied = await startTestServer({
      workers: 1,
      services: [{ name: 'connect', request_target: '/connect', source, instances: 1 }],
      extra: { trusted_proxies: ['127.0.0.1'], log: { level: 'debug', access: true } },
    });
    t.teardown(() => proxied.stop());
    const ws = await openWs(`ws://127.0.0.1:${proxied.port}/connect?mode=user&user=bob`, 5000, {
      headers: { 'X-Forwarded-For': '198.51.100.1, 203.0.113.9' },
    });
    const req = JSON.parse(await ask(ws, 'request')) as { ip: string; port: number };
    t.equal(req.ip, '203.0.113.9', 'request.ip: the right-most untrusted hop');
    t.equal(req.port, 0, 'request.port: not known behind a proxy that names no port');
    const info = JSON.parse(await ask(ws, 'info')) as { ip: string; user: string };
    t.equal(info.ip, '203.0.113.9', 'ws:info: the client');
    t.equal(info.user, 'bob');
    ws.close();
    // An onConnect refusal after a wait: one access line with its status, reason, client and
    // the time the wait took.
    const refused = await handshakeAnswer(proxied.port, '/connect?mode=sleeprefuse&ms=200', [
      'X-Forwarded-For: 203.0.113.10',
    ]);
    t.equal(refused.status, 401);
    const line = (): Record<string, string | number> | undefined =>
      proxied.events.find((e) => e.source === 'access' && e.fields?.status === 401)?.fields;
    await until(() => line() !== undefined);
    t.match(line(), { status: 401, reason: 'token expired', client: '203.0.113.10' });
    t.ok(Number(line()?.duration_ms) >= 190, 'the wait is in the duration');
    const accepted = proxied.events.find((e) => e.source === 'access' && e.fields?.status === 101);
    t.match(accepted?.fields, { client: '203.0.113.9', path: '/connect' });
  },
);
