/**
 * The client against a real lapps server running test/lua/services/lapps/echo_lapps.lua:
 * requests and error responses, many in flight, out-of-order answers, timeouts, notify and
 * subscribe, reconnect with re-subscription after a restart on the same port, close(); and
 * against a plain `ws` server that sends garbage.
 */
import t from 'tap';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Decoder, Encoder } from 'cbor-x';
import WebSocket, { WebSocketServer } from 'ws';

import {
  connect,
  LappsClosedError,
  LappsError,
  LappsPendingLimitError,
  LappsProtocolError,
  LappsSubscriptionError,
  LappsTimeoutError,
  type ClientState,
} from '../../lib/client/index.js';
import { repoRoot, startTestServer } from '../helpers/server.js';
import { until } from '../helpers/ws.js';

const source = path.join(repoRoot, 'test', 'lua', 'services', 'lapps', 'echo_lapps.lua');
const service = { name: 'echo_lapps', request_target: '/lapps', protocol: 'lapps', source };

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** Reconnect settings that keep a test short. */
const fast = { initialDelayMs: 20, maxDelayMs: 200, factor: 2, jitter: 0.5 };

/** The error `p` rejects with; fails when it resolves. */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

/** A port nothing listens on (bound and released). */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

t.test('requests, results, error responses, numbers', async (t) => {
  const server = await startTestServer({ workers: 2, services: [{ ...service, instances: 2 }] });
  t.teardown(() => server.stop());
  const errors: Error[] = [];
  // The default WebSocket (Node 20: the `ws` package, loaded on demand).
  const client = await connect(server.url('/lapps'), { onError: (e) => errors.push(e) });
  t.teardown(() => client.close());
  t.equal(client.state, 'open');
  t.same(await client.request('echo', [1, 'two', { three: 3 }]), [1, 'two', { three: 3 }]);
  t.same(await client.request('echo'), [], 'no params');

  const err = await rejection(client.request('nope'));
  t.ok(err instanceof LappsError, 'an error response rejects with LappsError');
  t.match(err, { name: 'LappsError', code: -32601, message: 'no such method: nope' });

  const misuse = await rejection(client.request('a.b'));
  t.ok(misuse instanceof TypeError, 'a method the server refuses is not sent');
  const badParams = await rejection(client.request('echo', 5 as unknown as unknown[]));
  t.ok(badParams instanceof TypeError, 'params must be an array');
  t.throws(() => client.notify('_x', [], 1), TypeError);

  t.same(
    await client.request('types', [9007199254740993n, {}]),
    ['array', true, 'object'],
    'a bigint arrives as a 64-bit integer',
  );
  const numbers = (await client.request('echo', [2n ** 40n, 2 ** 40, 5n, -7, 0.5])) as unknown[];
  t.same(numbers, [2n ** 40n, 2n ** 40n, 5, -7, 0.5]);
  t.equal(typeof numbers[0], 'bigint', 'an integer beyond 32 bits comes back as bigint');
  // Sent as a float64; the server writes integral numbers as integers.
  t.equal(typeof numbers[1], 'bigint', 'so does an integral number beyond 32 bits');
  t.equal(typeof numbers[2], 'number', 'a small integer comes back as number');
  t.equal(client.pendingCount, 0);
  t.same(errors, [], 'nothing reported');
  t.same(server.errors(), []);

  // An explicit constructor works the same.
  const other = await connect(server.url('/lapps'), { WebSocket });
  t.same(await other.request('echo', ['explicit']), ['explicit']);
  await other.close();
});

t.test('1,000 concurrent requests resolve with their own results', async (t) => {
  const server = await startTestServer({ workers: 1, services: [service] });
  t.teardown(() => server.stop());
  const client = await connect(server.url('/lapps'));
  t.teardown(() => client.close());
  const n = 1000;
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) => client.request('echo', [i, `v${i}`])),
  );
  const ms = performance.now() - started;
  let right = 0;
  results.forEach((r, i) => {
    const [num, text] = r as [number, string];
    if (num === i && text === `v${i}`) right++;
  });
  t.equal(right, n, 'every request got its own result');
  t.equal(client.pendingCount, 0, 'nothing left pending');
  t.comment(`${n} requests in ${ms.toFixed(0)} ms`);
});

t.test('out-of-order answers resolve the right requests', async (t) => {
  const server = await startTestServer({ workers: 1, services: [service] });
  t.teardown(() => server.stop());
  const client = await connect(server.url('/lapps'));
  t.teardown(() => client.close());
  const order: string[] = [];
  // `later` answers with an explicit id after params[1] seconds. (Not mixed with `echo`:
  // an answer without id goes to the oldest open request, which would be a `later` one.)
  const ask = (delay: number, value: string): Promise<unknown> =>
    client.request('later', [delay, value]).then((r) => {
      order.push(value);
      return r;
    });
  const all = Promise.all([ask(0.3, 'slow'), ask(0.05, 'fast'), ask(0.15, 'middle')]);
  t.same(await all, [['slow'], ['fast'], ['middle']]);
  t.same(order, ['fast', 'middle', 'slow'], 'resolved in the order the answers came');
});

t.test('timeouts; a late answer is dropped quietly', async (t) => {
  const server = await startTestServer({ workers: 1, services: [service] });
  t.teardown(() => server.stop());
  const errors: Error[] = [];
  const client = await connect(server.url('/lapps'), {
    requestTimeoutMs: 100,
    onError: (e) => errors.push(e),
  });
  t.teardown(() => client.close());
  const perRequest = await rejection(client.request('later', [0.3, 'late'], { timeout: 50 }));
  t.ok(perRequest instanceof LappsTimeoutError);
  t.match(perRequest, { method: 'later', timeoutMs: 50 });
  const byDefault = await rejection(client.request('later', [0.3, 'late']));
  t.match(byDefault, { name: 'LappsTimeoutError', timeoutMs: 100 });
  t.same(await client.request('later', [0.2, 'in time'], { timeout: 0 }), ['in time'], '0: none');
  await sleep(200); // both late answers have arrived by now
  t.same(errors, [], 'late answers are not errors');
  t.equal(client.pendingCount, 0);
  t.equal(client.state, 'open');
});

t.test('notify and subscribe: OONs reach the handlers of their channel', async (t) => {
  const server = await startTestServer({ workers: 2, services: [{ ...service, instances: 2 }] });
  t.teardown(() => server.stop());
  const a = await connect(server.url('/lapps'));
  const b = await connect(server.url('/lapps'));
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const first: unknown[][] = [];
  const second: unknown[][] = [];
  const unsubscribe = a.subscribe(5, (m) => first.push(m), { method: 'subscribe' });
  a.subscribe(5, (m) => second.push(m));
  // Requests on one connection are handled in order: once this is answered, so is subscribe.
  await a.request('echo', ['barrier']);
  b.notify('publish', ['news', { n: 1 }], 5);
  await until(() => first.length === 1 && second.length === 1, 3000, 'the OON');
  t.same(first, [['news', { n: 1 }]]);

  unsubscribe();
  unsubscribe(); // twice is harmless
  b.notify('publish', ['more'], 5);
  await until(() => second.length === 2, 3000, 'the second OON');
  t.same(first.length, 1, 'an unsubscribed handler hears nothing more');
  t.same(second[1], ['more']);

  const pushed: unknown[][] = [];
  a.subscribe(7, (m) => pushed.push(m));
  t.same(await a.request('oon'), ['after oon']);
  t.same(pushed, [['pushed']], 'an OON sent before the response is delivered first');
  t.same(server.errors(), []);
});

t.test('reconnect after a restart on the same port, with re-subscription', async (t) => {
  let server = await startTestServer({ workers: 1, services: [service] });
  const port = server.port;
  t.teardown(() => server.stop());
  const states: ClientState[] = [];
  const errors: Error[] = [];
  const client = await connect(server.url('/lapps'), {
    reconnect: fast,
    onStateChange: (s) => states.push(s),
    onError: (e) => errors.push(e),
  });
  t.teardown(() => client.close());
  const got: unknown[][] = [];
  client.subscribe(5, (m) => got.push(m), { method: 'subscribe' });
  await client.request('echo', ['barrier']);
  client.notify('publish', ['before'], 5);
  await until(() => got.length === 1, 3000, 'the first OON');

  const inFlight = client.request('later', [0.5, 'lost']);
  const stopped = server.stop();
  const lost = await rejection(inFlight);
  t.ok(lost instanceof LappsClosedError, 'a request on the dropped connection rejects');
  t.match(lost, { sent: true }, '... marked as sent: it may have been processed');
  await stopped;
  await until(() => client.state === 'reconnecting', 3000, 'reconnecting');

  // Made while reconnecting: queued, sent after the re-subscription.
  const queued = client.request('echo', ['queued']);
  client.notify('publish', ['while away'], 5);
  t.equal(client.pendingCount, 2);
  await sleep(300); // a few refused attempts
  t.equal(client.state, 'reconnecting');

  const restarted = performance.now();
  server = await startTestServer({ workers: 1, services: [service], port });
  t.same(await queued, ['queued'], 'the queued request went out on the new connection');
  await until(() => got.length === 2, 3000, 'the OON published after reconnecting');
  t.comment(`reconnected ${(performance.now() - restarted).toFixed(0)} ms after the restart`);
  t.same(got, [['before'], ['while away']], 'subscribed again before the queue was sent');
  t.same(states, ['open', 'reconnecting', 'open']);
  t.same(errors, []);
  await client.close();
  t.same(states, ['open', 'reconnecting', 'open', 'closed']);
});

t.test('reconnect off: a drop closes the client', async (t) => {
  const server = await startTestServer({ workers: 1, services: [service] });
  const client = await connect(server.url('/lapps'), { reconnect: false });
  const inFlight = client.request('later', [0.5, 'lost']);
  const stopping = server.stop();
  const err = await rejection(inFlight);
  t.ok(err instanceof LappsClosedError);
  t.match(err, { sent: true, closeCode: 1001 });
  await stopping;
  t.equal(client.state, 'closed');
  const after = await rejection(client.request('echo'));
  t.match(after, { name: 'LappsClosedError', sent: false });
  t.throws(() => client.notify('publish', [], 5), LappsClosedError);
  await client.close();
});

t.test('close() rejects pending requests and is final', async (t) => {
  const server = await startTestServer({ workers: 1, services: [service] });
  t.teardown(() => server.stop());
  const states: ClientState[] = [];
  const client = await connect(server.url('/lapps'), { onStateChange: (s) => states.push(s) });
  const pending = [client.request('later', [0.5, 'a']), client.request('later', [0.5, 'b'])];
  const closing = client.close();
  t.equal(client.close(), closing, 'close() twice: the same promise');
  for (const p of pending) {
    const err = await rejection(p);
    t.ok(err instanceof LappsClosedError);
    t.match(err, { sent: true, message: 'the client was closed' });
  }
  await closing;
  t.equal(client.state, 'closed');
  t.same(states, ['open', 'closed']);
  t.match(await rejection(client.request('echo')), { name: 'LappsClosedError' });
  t.throws(() => client.subscribe(5, () => {}), LappsClosedError);
});

t.test('a first connection that fails rejects connect()', async (t) => {
  const port = await freePort();
  const refused = await rejection(connect(`ws://127.0.0.1:${port}/lapps`, { reconnect: fast }));
  t.ok(refused instanceof LappsClosedError, 'nothing listening: LappsClosedError');
  t.match(refused.message, /cannot connect to ws:\/\/127\.0\.0\.1/);

  // Accepts TCP, never answers the handshake.
  const sockets: net.Socket[] = [];
  const silent = net.createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const url = `ws://127.0.0.1:${(silent.address() as net.AddressInfo).port}/`;
  const hung = await rejection(connect(url, { connectTimeoutMs: 100 }));
  t.match(hung, { name: 'LappsClosedError', message: /no open handshake within 100 ms/ });

  t.match(await rejection(connect('ws://x/', { maxPending: 0 })), { name: 'RangeError' });
  t.match(await rejection(connect('ws://x/', { reconnect: { factor: 0.5 } })), RangeError);
});

t.test('maxPending bounds requests in flight', async (t) => {
  const server = await startTestServer({ workers: 1, services: [service] });
  t.teardown(() => server.stop());
  const client = await connect(server.url('/lapps'), { maxPending: 2 });
  t.teardown(() => client.close());
  const a = client.request('later', [0.1, 'a']);
  const b = client.request('later', [0.1, 'b']);
  const c = await rejection(client.request('echo', ['c']));
  t.ok(c instanceof LappsPendingLimitError);
  t.same(await Promise.all([a, b]), [['a'], ['b']]);
  t.same(await client.request('echo', ['d']), ['d'], 'room again once answered');
});

t.test('malformed input from the server is reported, never thrown', async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  const garbage: (string | Buffer)[] = [
    'a text frame',
    Buffer.from([0xff]), // invalid CBOR
    Buffer.from([0xa0, 0x00]), // trailing bytes
    Buffer.alloc(100_000, 0x81), // nesting deeper than the decoder's stack (truncated too)
    encoder.encode([1, 2]),
    encoder.encode({ cid: 'x' }),
    encoder.encode({ cid: -1, message: [] }),
    encoder.encode({ cid: 0, status: 2 }),
    encoder.encode({ cid: 0, status: 1 }),
    encoder.encode({ cid: 0, status: 1, result: [], error: { code: 1, message: 'x' } }),
    encoder.encode({ cid: 0, status: 0, error: { code: 'x', message: 'm' } }),
    encoder.encode({ cid: 0, status: 0, error: 'oops' }),
    encoder.encode({ cid: 0, status: 1, result: [], id: [1] }),
    encoder.encode({ cid: 0, status: 1, result: [], id: 1.5 }),
    encoder.encode({ cid: 0, status: 1, result: [], id: 424242 }),
    encoder.encode({ cid: 0, status: 1, result: [], id: 'abc' }),
    encoder.encode({ cid: 0, status: 1, result: [] }),
    encoder.encode({ cid: 3, message: 'not an array' }),
    encoder.encode({ cid: 3, status: 1, message: [] }),
    encoder.encode({ cid: 0, status: 0, error: { code: -32700, message: 'parse error: x' } }),
    encoder.encode({ cid: 9, message: ['to a handler that throws'] }),
    encoder.encode({ cid: 10, message: ['to nobody'] }),
  ];
  wss.on('connection', (ws) => {
    ws.on('message', (data: Buffer) => {
      const req = decoder.decode(data) as { id: number; params: unknown[] };
      for (const g of garbage) ws.send(g);
      // The real answer, with the id as a 64-bit integer (it decodes as a bigint).
      ws.send(encoder.encode({ cid: 0, status: 1, result: req.params, id: BigInt(req.id) }));
    });
  });
  const errors: Error[] = [];
  const port = (wss.address() as net.AddressInfo).port;
  const client = await connect(`ws://127.0.0.1:${port}/`, { onError: (e) => errors.push(e) });
  t.teardown(() => client.close());
  client.subscribe(9, () => {
    throw new Error('handler bug');
  });
  t.same(await client.request('echo', ['still works']), ['still works']);
  t.equal(client.state, 'open');
  const expected = garbage.length - 1; // the OON to an unknown channel is simply dropped
  t.equal(errors.length, expected, 'one report per bad message');
  const names = errors.map((e) => e.name);
  t.equal(names.filter((n) => n === 'LappsProtocolError').length, expected - 2);
  const idless = errors.find((e) => e instanceof LappsError);
  t.match(idless, { code: -32700 }, 'an error response without id is reported as LappsError');
  const handler = errors.find((e) => e instanceof LappsSubscriptionError);
  t.match(handler, { cid: 9, cause: { message: 'handler bug' } });
  t.ok(
    errors.every((e) => !(e instanceof LappsProtocolError) || e.message.length > 0),
    'each report says what was wrong',
  );
  t.match(errors[0], { name: 'LappsProtocolError', message: /text frame/ });
  t.match(errors[1], { message: /invalid CBOR/ });
});
