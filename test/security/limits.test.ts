/**
 * Abuse limits, each crossed once, with its response and its counter: connections (server
 * and per address), new connections per second per address, frame size, fragments per
 * message, header size and count, handshake and idle timeouts, the outbound buffer. A flood
 * from one address leaves clients from other addresses served.
 */
import net from 'node:net';

import t from 'tap';

import { startTestServer } from '../helpers/server.js';
import {
  delay,
  expectEcho,
  handshakeRequest,
  Op,
  randomKey,
  RawClient,
  scaled,
} from '../helpers/raw-client.js';

/** Opens a socket from `localAddress`, sends a handshake, resolves with the status line. */
function handshakeStatus(
  port: number,
  localAddress = '127.0.0.1',
): Promise<{ status: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    let head = '';
    const timer = setTimeout(() => reject(new Error('no response')), scaled(5000));
    socket.on('error', () => {});
    socket.on('data', (b: Buffer) => {
      head += b.toString('latin1');
      const end = head.indexOf('\r\n');
      if (end >= 0) {
        clearTimeout(timer);
        socket.removeAllListeners('data');
        resolve({ status: head.slice(0, end), socket });
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ status: head || '(closed)', socket });
    });
    socket.write(handshakeRequest({ key: randomKey(), host: `127.0.0.1:${port}` }));
  });
}

t.test('max_connections: 503 beyond it, room again after a close', async (t) => {
  const server = await startTestServer({ tls: false, limits: { max_connections: 3 } });
  t.teardown(() => server.stop());
  const held = await Promise.all([1, 2, 3].map(() => RawClient.connect(server.port)));
  const over = await handshakeStatus(server.port);
  t.match(over.status, /^HTTP\/1\.1 503/, 'the fourth gets 503');
  over.socket.destroy();
  held[0]!.destroy();
  await delay(100);
  const again = await RawClient.connect(server.port);
  again.send({ opcode: Op.Text, payload: 'room again' });
  await expectEcho(t, again, Op.Text, Buffer.from('room again'));
  t.equal(server.counters().connection_limit, 1);
  for (const c of [...held, again]) c.destroy();
});

t.test('per-address limits: a flood from one address, others still served', async (t) => {
  const server = await startTestServer({
    tls: false,
    limits: { max_connections_per_ip: 20, max_new_connections_per_ip_per_second: 1000 },
  });
  t.teardown(() => server.stop());
  const flood = await Promise.all(
    Array.from({ length: 60 }, () => handshakeStatus(server.port, '127.0.0.1')),
  );
  const ok = flood.filter((f) => f.status.includes('101')).length;
  const refused = flood.filter((f) => /^HTTP\/1\.1 503/.test(f.status)).length;
  t.equal(ok, 20, '20 connections from 127.0.0.1 held');
  t.equal(refused, 40, 'the other 40 got 503');
  const other = await handshakeStatus(server.port, '127.0.0.2');
  t.match(other.status, /101/, 'a client from 127.0.0.2 still gets in');
  other.socket.destroy();
  t.equal(server.counters().per_ip_connection_limit, 40, 'counted');
  for (const f of flood) f.socket.destroy();
});

t.test('new connections per second per address: 429, then allowed again', async (t) => {
  const server = await startTestServer({
    tls: false,
    limits: { max_new_connections_per_ip_per_second: 5 },
  });
  t.teardown(() => server.stop());
  const burst = [];
  for (let i = 0; i < 8; ++i) burst.push(await handshakeStatus(server.port, '127.0.0.3'));
  const statuses = burst.map((b) => b.status.split(' ')[1]);
  t.same(statuses.slice(0, 5), ['101', '101', '101', '101', '101'], 'a burst of 5 allowed');
  t.ok(
    statuses.slice(5).every((s) => s === '429'),
    `then 429 (${statuses.join(' ')})`,
  );
  t.match(
    (await handshakeStatus(server.port, '127.0.0.4')).status,
    /101/,
    'another address is not limited',
  );
  await delay(450);
  const later = await handshakeStatus(server.port, '127.0.0.3');
  t.match(later.status, /101/, 'tokens come back with time');
  t.ok(server.counters().per_ip_rate_limit >= 3, 'counted');
  for (const b of [...burst, later]) b.socket.destroy();
});

t.test('max_frame_size: a bigger frame closes with 1009', async (t) => {
  const server = await startTestServer({ tls: false, limits: { max_frame_size: 1000 } });
  t.teardown(() => server.stop());
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Binary, payload: Buffer.alloc(1000, 1) });
  await expectEcho(t, c, Op.Binary, Buffer.alloc(1000, 1));
  c.send({ opcode: Op.Binary, payload: Buffer.alloc(1001, 2) });
  const close = await c.expectClose();
  t.equal(close.code, 1009);
  t.equal(close.reason.toString(), 'frame too big');
  t.equal(server.counters().frame_too_big, 1);
});

t.test('max_fragments: one frame too many closes with 1008', async (t) => {
  const server = await startTestServer({ tls: false, limits: { max_fragments: 4 } });
  t.teardown(() => server.stop());
  const c = await RawClient.connect(server.port);
  c.send(
    { opcode: Op.Text, payload: 'a', fin: false },
    { opcode: Op.Continuation, payload: 'b', fin: false },
    { opcode: Op.Continuation, payload: 'c', fin: false },
    { opcode: Op.Continuation, payload: 'd' },
  );
  t.equal((await c.readMessage()).payload.toString(), 'abcd', '4 fragments: fine');
  c.send(
    { opcode: Op.Text, payload: 'a', fin: false },
    { opcode: Op.Continuation, payload: '', fin: false },
    { opcode: Op.Continuation, payload: '', fin: false },
    { opcode: Op.Continuation, payload: '', fin: false },
    { opcode: Op.Continuation, payload: 'e' },
  );
  const close = await c.expectClose();
  t.equal(close.code, 1008);
  t.equal(close.reason.toString(), 'too many fragments');
  t.equal(server.counters().too_many_fragments, 1);
});

t.test(
  'header size, header count, handshake and idle timeouts, slow consumers are counted',
  async (t) => {
    const server = await startTestServer({
      tls: false,
      limits: {
        max_header_size: 512,
        max_headers: 10,
        handshake_timeout_ms: scaled(300),
        idle_timeout_ms: scaled(300),
        ping_interval_ms: 0,
        outbound_high_water_mark: 64 * 1024,
      },
    });
    t.teardown(() => server.stop());
    const big = await RawClient.open(server.port);
    big.write(handshakeRequest({ extra: [`X-Pad: ${'p'.repeat(600)}`] }));
    t.equal((await big.readHttpResponse()).status, 431, 'head too large: 431');
    const many = await RawClient.open(server.port);
    many.write(handshakeRequest({ extra: Array.from({ length: 12 }, (_, i) => `X-H${i}: v`) }));
    t.equal((await many.readHttpResponse()).status, 431, 'too many headers: 431');
    const slow = await RawClient.open(server.port);
    slow.write('GET /echo HTTP/1.1\r\n');
    t.equal((await slow.readHttpResponse(scaled(3000))).status, 408, 'handshake timeout: 408');
    const idler = await startTestServer({ tls: false, limits: { idle_timeout_ms: scaled(300) } });
    t.teardown(() => idler.stop());
    const idle = await RawClient.connect(idler.port);
    t.equal((await idle.expectClose(scaled(3000))).code, 1001, 'idle: 1001');
    t.equal(idler.counters().idle_timeouts, 1, 'idle_timeouts');
    // A client that never reads while we push 1 MiB messages at it.
    const sink = await RawClient.connect(server.port);
    sink.socket.pause();
    for (let i = 0; i < 40; ++i)
      sink.send({ opcode: Op.Binary, payload: Buffer.alloc(1 << 20, i) });
    const deadline = Date.now() + scaled(10_000);
    while (server.counters().slow_consumers < 1 && Date.now() < deadline) await delay(20);
    const n = server.counters();
    t.equal(n.header_limit, 2, 'header_limit');
    t.equal(n.handshake_timeouts, 1, 'handshake_timeouts');
    t.ok(n.slow_consumers >= 1, 'slow_consumers');
    for (const c of [big, many, slow, idle, sink]) c.destroy();
    const fresh = await RawClient.connect(server.port);
    fresh.send({ opcode: Op.Text, payload: 'still serving' });
    await expectEcho(t, fresh, Op.Text, Buffer.from('still serving'));
    fresh.destroy();
  },
);
