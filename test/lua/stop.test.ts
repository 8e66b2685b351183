/**
 * Graceful stop in process (server.stop(), as SIGTERM does): what clients sent before the
 * stop is handled and answered before their 1001, suspended handlers and the messages
 * waiting behind them included; what arrives after our close frame is discarded and
 * counted; handlers and standalone services that never finish are cut at
 * limits.drain_timeout_ms. test/e2e/cli-stop.test.ts drives the same through SIGTERM.
 */
import path from 'node:path';

import t from 'tap';
import WebSocket from 'ws';

import {
  delay,
  handshakeRequest,
  Op,
  randomKey,
  RawClient,
  scaled,
} from '../helpers/raw-client.js';
import { repoRoot, startTestServer, type TestServer } from '../helpers/server.js';
import { testPki } from '../helpers/pki.js';

const drain = {
  name: 'drain',
  request_target: '/drain',
  source: path.join(repoRoot, 'test', 'lua', 'services', 'drain', 'drain.lua'),
  instances: 2,
};

function logged(server: TestServer, part: string): boolean {
  return server.events.some((e) => e.message.includes(part));
}

/** A ws client recording the messages before its close frame, and the close code. */
async function connect(
  url: string,
  options: WebSocket.ClientOptions = {},
): Promise<{ ws: WebSocket; got: string[]; first: Promise<void>; closed: Promise<number> }> {
  const ws = new WebSocket(url, options);
  const got: string[] = [];
  let isClosed = false;
  ws.on('message', (d: WebSocket.RawData) => {
    if (!isClosed) got.push(d.toString());
  });
  const first = new Promise<void>((resolve) => ws.once('message', () => resolve()));
  const closed = new Promise<number>((resolve) =>
    ws.once('close', (code: number) => {
      isClosed = true;
      resolve(code);
    }),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, got, first, closed };
}

/** Sends a burst on each client, waits for the first answers, stops, checks every answer. */
async function burstThenStop(
  t: Pick<typeof import('tap').default, 'same'>,
  server: TestServer,
  clients: number,
  per: number,
  options: WebSocket.ClientOptions = {},
): Promise<void> {
  const cs = await Promise.all(
    Array.from({ length: clients }, () => connect(server.url('/drain'), options)),
  );
  const sent = cs.map((c, k) => {
    const mine = Array.from({ length: per }, (_, i) => `${k}.${i}`);
    for (const m of mine) c.ws.send(m);
    return mine;
  });
  // The first message of each burst is in its handler (suspended for 50 ms); the rest is in
  // the connection's queue or still in its socket buffer.
  await Promise.all(cs.map((c) => c.first));
  await server.stop();
  const codes = await Promise.all(cs.map((c) => c.closed));
  t.same(
    cs.map((c) => c.got),
    sent,
    `all ${clients * per} messages answered, in order, before the close frame`,
  );
  t.same(new Set(codes), new Set([1001]), 'then 1001');
  t.same(server.errors(), [], 'no error in the log');
}

t.test('stop(): every message read before it is answered before 1001', async (t) => {
  const server = await startTestServer({ services: [drain] });
  await burstThenStop(t, server, 8, 12);
  t.ok(logged(server, 'drain: onShutdown'), 'onShutdown ran');
});

t.test('stop() over wss: the same', async (t) => {
  const server = await startTestServer({ services: [drain], tls: true });
  await burstThenStop(t, server, 4, 8, { ca: testPki().caPem });
});

t.test('data after our close frame is discarded and counted', async (t) => {
  const server = await startTestServer({ services: [drain] });
  const c = await RawClient.connect(server.port, { path: '/drain' });
  t.teardown(() => c.destroy());
  c.send({ opcode: Op.Text, payload: 'one' }, { opcode: Op.Text, payload: 'two' });
  t.equal((await c.readMessage()).payload.toString(), 'one');
  const stopped = server.stop();
  t.equal((await c.readMessage()).payload.toString(), 'two', 'answered during the drain');
  const close = await c.nextFrame();
  t.equal(close.opcode, Op.Close);
  t.equal(close.payload.readUInt16BE(0), 1001);
  // Sent after the server's close frame: read to reach our close, never delivered.
  c.send({ opcode: Op.Text, payload: 'too late' });
  c.send({ opcode: Op.Close, payload: close.payload.subarray(0, 2) });
  t.equal(await c.waitEnd(), 'fin', 'the server ends TCP');
  await stopped;
  t.same(c.pending(), [], 'nothing after the close frame');
  t.equal(server.counters().messages_after_close, 1, 'counted in messages_after_close');
});

t.test('a client in its handshake at the stop gets 503', async (t) => {
  const server = await startTestServer({ services: [drain] });
  const c = await RawClient.open(server.port);
  t.teardown(() => c.destroy());
  c.write('GET /drain HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  // The worker has the partial request once it is readable; give it a moment to read it.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const stopped = server.stop();
  const res = await c.readHttpResponse();
  t.equal(res.status, 503);
  await stopped;
});

t.test('a client waiting in the accept queue at the stop gets 503, not a reset', async (t) => {
  const server = await startTestServer({ workers: 1, services: [{ ...drain, instances: 1 }] });
  const busy = await connect(server.url('/drain'));
  busy.ws.send('busy'); // the only worker computes for 300 ms: it accepts nobody meanwhile
  await delay(100);
  const c = await RawClient.open(server.port); // connected: in the listener's accept queue
  t.teardown(() => c.destroy());
  c.write(handshakeRequest({ path: '/drain', key: randomKey(), host: `127.0.0.1:${server.port}` }));
  const stopped = server.stop(); // reaches the worker while it is still busy
  const res = await c.readHttpResponse();
  t.equal(res.status, 503);
  await stopped;
  t.same(busy.got, ['busy'], 'the busy one was answered');
});

t.test('a handler that never finishes is cut at drain_timeout_ms', async (t) => {
  const server = await startTestServer({
    services: [drain],
    limits: { drain_timeout_ms: 300 },
  });
  const stuck = await connect(server.url('/drain'));
  stuck.ws.send('stuck'); // lapps.sleep(3600)
  stuck.ws.send('behind it');
  const other = await connect(server.url('/drain'));
  other.ws.send('a');
  other.ws.send('b');
  await other.first;
  const started = Date.now();
  await server.stop();
  const ms = Date.now() - started;
  t.equal(await stuck.closed, 1001, 'stuck: 1001');
  t.same(stuck.got, [], 'stuck: never answered');
  t.equal(await other.closed, 1001);
  t.same(other.got, ['a', 'b'], 'the other connection was answered');
  t.ok(ms >= 250, `the stop waited for the stuck handler (${ms} ms)`);
  t.ok(ms < scaled(3000), 'and cut it at the timeout');
  t.ok(
    logged(server, 'drain timeout: closed 1 connection(s) whose handlers had not finished (1 more'),
    'reported',
  );
});

t.test(
  'a standalone run() that never waits (handler_timeout_ms 0) is cut at drain_timeout_ms',
  async (t) => {
    const server = await startTestServer({
      workers: 1,
      limits: { drain_timeout_ms: 300 },
      services: [
        {
          name: 'stubborn',
          standalone: true,
          source: path.join(repoRoot, 'test', 'lua', 'services', 'runtime', 'stubborn.lua'),
          handler_timeout_ms: 0,
        },
      ],
    });
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      server.stop().then(() => 'stopped'),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('still running'), scaled(5000));
      }),
    ]);
    clearTimeout(timer);
    t.equal(result, 'stopped', `stop completes (${Date.now() - started} ms)`);
    t.ok(logged(server, 'run: still running when the drain timeout ended'), 'reported');
  },
);

t.test('stop() while a flood waits in slices: every message read is answered', async (t) => {
  const busy = {
    name: 'busy',
    request_target: '/busy',
    source: path.join(repoRoot, 'test', 'lua', 'services', 'fair', 'busy.lua'),
  };
  // A long drain timeout: the stop must end when the backlog is served, not at the timeout.
  const server = await startTestServer({
    workers: 1,
    services: [busy],
    limits: { drain_timeout_ms: 60000 },
  });
  const c = await RawClient.connect(server.port, { path: '/busy' });
  t.teardown(() => c.destroy());
  // 400 messages of 2 ms each in one write: the worker serves them in slices, the rest
  // waiting unparsed in the connection's backlog when the stop begins.
  const frames = Array.from({ length: 400 }, (_, i) => ({ opcode: Op.Text, payload: `m${i}` }));
  c.send(...frames);
  t.equal((await c.readMessage()).payload.toString(), 'm0');
  const started = Date.now();
  const stopped = server.stop();
  for (let i = 1; i < 400; ++i) {
    const m = await c.readMessage();
    if (m.payload.toString() !== `m${i}`) {
      t.fail(`message ${i}: got ${m.opcode} ${m.payload.toString()}`);
      break;
    }
  }
  const close = await c.nextFrame();
  t.equal(close.opcode, Op.Close, 'then the close frame');
  t.equal(close.payload.readUInt16BE(0), 1001);
  c.send({ opcode: Op.Close, payload: close.payload.subarray(0, 2) });
  await stopped;
  const ms = Date.now() - started;
  t.ok(ms < scaled(10000), `the stop ended with the backlog (${ms} ms), not at the drain timeout`);
  t.same(server.errors(), [], 'no error in the log');
});
