/**
 * Behind proxies (docs/security.md): X-Forwarded-For and Forwarded believed from
 * trusted_proxies only, the PROXY protocol header on proxy_protocol listeners (v1, v2, over
 * TLS; truncated, garbage, slow), and the real client seen by ACLs, per-IP limits and the
 * access log. The access log is the window on Connection::peer here: its `client` field is
 * what every check saw.
 */
import net from 'node:net';
import tls from 'node:tls';

import t from 'tap';

import { testPki } from '../helpers/pki.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { delay, handshakeRequest, randomKey, scaled } from '../helpers/raw-client.js';
import type { NativeEvent } from '../../lib/native.js';

interface Answer {
  /** The status line, or "" when the server closed without a word. */
  status: string;
  head: string;
  socket: net.Socket;
}

/**
 * Writes `chunks` to a fresh socket (with `gapMs` between them) and resolves with the
 * response's status line once the head is in, or "" once the server closed without one.
 */
function exchange(
  port: number,
  chunks: (string | Buffer)[],
  gapMs = 0,
  connect: () => net.Socket = () => net.connect({ port, host: '127.0.0.1' }),
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect();
    let head = '';
    let done = false;
    const finish = (status: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ status, head, socket });
    };
    const timer = setTimeout(() => reject(new Error('no answer and no close')), scaled(8000));
    socket.on('error', () => finish(''));
    socket.on('data', (b: Buffer) => {
      head += b.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end >= 0) finish(head.slice(0, head.indexOf('\r\n')));
    });
    socket.on('close', () => finish(head.slice(0, Math.max(0, head.indexOf('\r\n')))));
    void (async () => {
      for (const [i, c] of chunks.entries()) {
        if (i > 0 && gapMs) await delay(gapMs);
        if (socket.destroyed) return;
        socket.write(c);
      }
    })();
  });
}

function request(extra: string[] = [], path = '/echo'): string {
  return handshakeRequest({ key: randomKey(), host: 'localhost', path, extra });
}

function accessLines(server: TestServer): NativeEvent[] {
  return server.events.filter((e) => e.source === 'access');
}

/** The access log's client (and status) of the latest handshake, once it is logged. */
async function lastClient(server: TestServer, count: number): Promise<Record<string, unknown>> {
  for (let i = 0; i < 100 && accessLines(server).length < count; ++i) await delay(scaled(20));
  const lines = accessLines(server);
  return lines[lines.length - 1]?.fields ?? {};
}

/** PROXY v2 header for a TCP client `src`:`sport` (IPv4 or IPv6), or LOCAL without one. */
function proxyV2(src?: string, sport = 0): Buffer {
  const sig = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
  if (src === undefined) return Buffer.concat([sig, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  const v6 = net.isIPv6(src);
  const addr = (a: string): Buffer =>
    v6
      ? Buffer.from(
          (a.includes('::') ? expand(a) : a)
            .split(':')
            .map((h) => h.padStart(4, '0'))
            .join(''),
          'hex',
        )
      : Buffer.from(a.split('.').map(Number));
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sport, 0);
  ports.writeUInt16BE(80, 2);
  const body = Buffer.concat([addr(src), addr(v6 ? '::1' : '127.0.0.1'), ports]);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([sig, Buffer.from([0x21, v6 ? 0x21 : 0x11]), len, body]);
}

function expand(a: string): string {
  const [l = '', r = ''] = a.split('::');
  const left = l ? l.split(':') : [];
  const right = r ? r.split(':') : [];
  return [...left, ...Array(8 - left.length - right.length).fill('0'), ...right].join(':');
}

const accessOn = { log: { level: 'debug', access: true } };

t.test('X-Forwarded-For and Forwarded', async (t) => {
  t.test('from an untrusted peer: ignored', async (t) => {
    const server = await startTestServer({
      tls: false,
      extra: { ...accessOn, trusted_proxies: ['10.0.0.0/8'] },
    });
    t.teardown(() => server.stop());
    const a = await exchange(server.port, [
      request(['X-Forwarded-For: 203.0.113.5', 'Forwarded: for=198.51.100.1']),
    ]);
    t.match(a.status, /101/);
    a.socket.destroy();
    const f = await lastClient(server, 1);
    t.equal(f.client, '127.0.0.1', 'the socket peer stands');
  });

  t.test(
    'from a trusted peer: the right-most untrusted hop; forged left entries lose',
    async (t) => {
      const server = await startTestServer({
        tls: false,
        extra: { ...accessOn, trusted_proxies: ['127.0.0.1', '10.0.0.0/8'] },
      });
      t.teardown(() => server.stop());
      const cases: [string[], string, string][] = [
        [['X-Forwarded-For: 203.0.113.5'], '203.0.113.5', 'one hop'],
        [['X-Forwarded-For: 1.2.3.4, 203.0.113.5'], '203.0.113.5', 'a forged left-most entry'],
        [['X-Forwarded-For: 6.6.6.6, 203.0.113.5, 10.1.2.3'], '203.0.113.5', 'past a trusted hop'],
        [
          ['X-Forwarded-For: 1.2.3.4', 'X-Forwarded-For: 203.0.113.9'],
          '203.0.113.9',
          'repeated headers combined in order',
        ],
        [['Forwarded: for=192.0.2.60;proto=https'], '192.0.2.60', 'Forwarded'],
        [['Forwarded: for="[2001:db8::7]:4711"'], '2001:db8::7', 'Forwarded with an IPv6 client'],
        [['X-Forwarded-For: 2001:db8::42'], '2001:db8::42', 'X-Forwarded-For with an IPv6 client'],
        [
          ['X-Forwarded-For: 10.9.9.9'],
          '10.9.9.9',
          'only trusted hops: the left-most is the client',
        ],
        [[], '127.0.0.1', 'no header: the proxy itself'],
      ];
      let n = 0;
      for (const [headers, client, what] of cases) {
        const a = await exchange(server.port, [request(headers)]);
        t.match(a.status, /101/, `${what}: accepted`);
        a.socket.destroy();
        const f = await lastClient(server, ++n);
        t.equal(f.client, client, what);
      }
      t.same(server.errors(), []);
    },
  );

  t.test('trusted_proxies is reloadable', async (t) => {
    const options = { tls: false, extra: { ...accessOn } };
    const server = await startTestServer(options);
    t.teardown(() => server.stop());
    const before = await exchange(server.port, [request(['X-Forwarded-For: 203.0.113.5'])]);
    before.socket.destroy();
    t.equal((await lastClient(server, 1)).client, '127.0.0.1', 'not trusted yet');
    server.reload({ ...options, extra: { ...accessOn, trusted_proxies: ['127.0.0.1'] } });
    const after = await exchange(server.port, [request(['X-Forwarded-For: 203.0.113.5'])]);
    after.socket.destroy();
    t.equal((await lastClient(server, 2)).client, '203.0.113.5', 'trusted after the reload');
  });

  t.test('the ACLs see the client', async (t) => {
    const server = await startTestServer({
      tls: false,
      acl: { deny: ['198.51.100.0/24'] },
      services: [
        {
          name: 'echo',
          request_target: '/echo',
          source: 'services/echo/echo.lua',
          acl: { deny: ['203.0.113.0/24'] },
        },
      ],
      extra: { ...accessOn, trusted_proxies: ['127.0.0.1'] },
    });
    t.teardown(() => server.stop());
    const svc = await exchange(server.port, [request(['X-Forwarded-For: 203.0.113.5'])]);
    t.match(svc.status, /^HTTP\/1\.1 403/, 'the service ACL refuses the client');
    const wide = await exchange(server.port, [request(['X-Forwarded-For: 198.51.100.9'])]);
    t.match(wide.status, /^HTTP\/1\.1 403/, 'the server-wide ACL refuses the client');
    const ok = await exchange(server.port, [request(['X-Forwarded-For: 192.0.2.1'])]);
    t.match(ok.status, /101/, 'another client gets in through the same proxy');
    for (const a of [svc, wide, ok]) a.socket.destroy();
    t.equal(server.counters().acl_refused_at_handshake, 2);
    const f = await lastClient(server, 3);
    t.equal(f.client, '192.0.2.1');
  });

  t.test('per-IP limits apply to the client, and are given back at close', async (t) => {
    const server = await startTestServer({
      tls: false,
      limits: { max_connections_per_ip: 1, max_connections: 10 },
      extra: { trusted_proxies: ['127.0.0.1'] },
    });
    t.teardown(() => server.stop());
    const a1 = await exchange(server.port, [request(['X-Forwarded-For: 203.0.113.1'])]);
    const b1 = await exchange(server.port, [request(['X-Forwarded-For: 203.0.113.2'])]);
    t.match(a1.status, /101/, 'client A behind the proxy');
    t.match(b1.status, /101/, 'client B behind the same proxy has its own quota');
    const a2 = await exchange(server.port, [request(['X-Forwarded-For: 203.0.113.1'])]);
    t.match(a2.status, /^HTTP\/1\.1 503/, 'A again: over its limit');
    a2.socket.destroy();
    t.equal(server.counters().per_ip_connection_limit, 1);
    a1.socket.destroy();
    await delay(scaled(150));
    const a3 = await exchange(server.port, [request(['X-Forwarded-For: 203.0.113.1'])]);
    t.match(a3.status, /101/, 'A gets in again once its connection closed');
    // Refused before its client was known (a bad request): only the total was counted.
    const bad = await exchange(server.port, ['GET /echo HTTP/1.1\r\nHost: x\r\n\r\n']);
    t.match(bad.status, /^HTTP\/1\.1 4/);
    bad.socket.destroy();
    for (const a of [b1, a3]) a.socket.destroy();
    await delay(scaled(150));
    // Every count was given back: ten connections fit again.
    const all = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        exchange(server.port, [request([`X-Forwarded-For: 198.51.100.${i + 1}`])]),
      ),
    );
    t.equal(all.filter((a) => /101/.test(a.status)).length, 10, 'all counts given back');
    for (const a of all) a.socket.destroy();
  });
});

t.test('PROXY protocol', async (t) => {
  const server = await startTestServer({
    tls: false,
    listeners: [{ host: '127.0.0.1', port: 0, proxy_protocol: true }],
    limits: { proxy_protocol_timeout_ms: scaled(400), max_connections_per_ip: 1 },
    extra: accessOn,
  });
  t.teardown(() => server.stop());
  let logged = 0;

  t.test('v1, header and request in one write: nothing after the header is lost', async (t) => {
    const a = await exchange(server.port, [
      'PROXY TCP4 192.0.2.10 127.0.0.1 5555 80\r\n' + request(),
    ]);
    t.match(a.status, /101/);
    a.socket.destroy();
    const f = await lastClient(server, ++logged);
    t.equal(f.client, '192.0.2.10');
    t.equal(f.port, 5555);
  });

  t.test('v1 in pieces, slowly (within the timeout)', async (t) => {
    const a = await exchange(
      server.port,
      ['PROX', 'Y TCP6 2001:db8::5 ::1 ', '40000 80\r', '\n', request()],
      scaled(40),
    );
    t.match(a.status, /101/);
    a.socket.destroy();
    const f = await lastClient(server, ++logged);
    t.equal(f.client, '2001:db8::5', 'an IPv6 client');
  });

  t.test('v2, IPv4 and IPv6; LOCAL keeps the socket peer', async (t) => {
    const v4 = await exchange(server.port, [
      Buffer.concat([proxyV2('192.0.2.77', 1234), Buffer.from(request())]),
    ]);
    t.match(v4.status, /101/);
    v4.socket.destroy();
    t.equal((await lastClient(server, ++logged)).client, '192.0.2.77');
    const v6 = await exchange(server.port, [proxyV2('2001:db8:1::9', 4321), request()]);
    t.match(v6.status, /101/);
    v6.socket.destroy();
    t.equal((await lastClient(server, ++logged)).client, '2001:db8:1::9');
    const local = await exchange(server.port, [proxyV2(), request()]);
    t.match(local.status, /101/);
    local.socket.destroy();
    t.equal((await lastClient(server, ++logged)).client, '127.0.0.1');
  });

  t.test('per-IP limit: two clients behind one balancer each get their own', async (t) => {
    const a = await exchange(server.port, ['PROXY TCP4 192.0.2.1 127.0.0.1 1 80\r\n', request()]);
    const b = await exchange(server.port, ['PROXY TCP4 192.0.2.2 127.0.0.1 2 80\r\n', request()]);
    const a2 = await exchange(server.port, ['PROXY TCP4 192.0.2.1 127.0.0.1 3 80\r\n', request()]);
    t.match(a.status, /101/);
    t.match(b.status, /101/);
    t.match(a2.status, /^HTTP\/1\.1 503/, 'the second from 192.0.2.1 is over its limit');
    for (const x of [a, b, a2]) x.socket.destroy();
    logged += 3;
  });

  t.test('garbage, truncated, missing, slow: closed without an answer, counted', async (t) => {
    const before = server.counters().proxy_header_refused;
    const garbage = await exchange(server.port, [request()]);
    t.equal(garbage.status, '', 'an HTTP request without the header');
    const bad = await exchange(server.port, ['PROXY TCP4 999.1.1.1 127.0.0.1 1 2\r\n', request()]);
    t.equal(bad.status, '', 'a malformed address');
    const truncated = await exchange(server.port, ['PROXY TCP4 192.0.2']);
    truncated.socket.end();
    const cut = await exchange(server.port, [proxyV2('192.0.2.3', 1).subarray(0, 20)]);
    t.equal(cut.status, '', 'a truncated v2 header, then nothing: the timeout');
    const silent = await exchange(server.port, []);
    t.equal(silent.status, '', 'nothing at all: the timeout');
    const slow = await exchange(
      server.port,
      ['PROXY ', 'TCP4 ', '192.0.2.4 ', '127.0.0.1 ', '1 ', '80\r\n'],
      scaled(150),
    );
    t.equal(slow.status, '', 'a header slower than proxy_protocol_timeout_ms');
    await delay(scaled(100));
    t.ok(server.counters().proxy_header_refused - before >= 5, 'counted');
    t.equal(accessLines(server).length, logged, 'no access-log line: there was no handshake');
  });
});

t.test('PROXY protocol before TLS, and the server-wide ACL on its client', async (t) => {
  const pki = testPki();
  const server = await startTestServer({
    listeners: [
      {
        host: '127.0.0.1',
        port: 0,
        proxy_protocol: true,
        tls: { cert: pki.serverCert, key: pki.serverKey },
      },
    ],
    acl: { deny: ['198.51.100.0/24'] },
    extra: accessOn,
  });
  t.teardown(() => server.stop());
  const overTls = (header: string): Promise<Answer> =>
    exchange(server.port, [request()], 0, () => {
      const raw = net.connect({ port: server.port, host: '127.0.0.1' });
      raw.write(header);
      return tls.connect({ socket: raw, ca: pki.caPem, servername: 'localhost' });
    });
  const ok = await overTls('PROXY TCP4 192.0.2.50 127.0.0.1 6000 443\r\n');
  t.match(ok.status, /101/, 'wss after the header');
  ok.socket.destroy();
  t.equal((await lastClient(server, 1)).client, '192.0.2.50');
  const refused = await overTls('PROXY TCP4 198.51.100.5 127.0.0.1 6000 443\r\n');
  t.equal(refused.status, '', 'a client the server-wide ACL refuses: closed');
  t.equal(server.counters().acl_refused_at_accept, 1);
  const noHeader = await exchange(server.port, [], 0, () =>
    tls.connect({ port: server.port, host: '127.0.0.1', ca: pki.caPem, servername: 'localhost' }),
  );
  t.equal(noHeader.status, '', 'a TLS client without the header: closed');
});
