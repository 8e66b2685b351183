/**
 * Graceful stop of a real `lapps start` driven from outside: on SIGTERM every message the
 * clients sent before the signal is handled and answered before their 1001 close frame,
 * new clients are refused meanwhile, a handler that never finishes is cut at
 * limits.drain_timeout_ms, and a second signal exits at once. The service answers each
 * message after 50 ms (test/lua/services/drain/drain.lua), so a burst keeps its
 * connection's handler suspended with the rest of the burst waiting behind it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';
import WebSocket from 'ws';

import { repoRoot, startLapps, type Ctx, type Lapps } from '../helpers/lapps-cli.js';
import { delay, scaled } from '../helpers/raw-client.js';

const source = path.join(repoRoot, 'test', 'lua', 'services', 'drain', 'drain.lua');

/** Starts `lapps start` on a config with the drain service; resolves with its URL. */
async function startDrain(
  test: Ctx,
  limits: Record<string, unknown> = {},
): Promise<{ lapps: Lapps; url: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lapps-stop-'));
  test.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'lapps.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      listeners: [{ host: '127.0.0.1', port: 0 }],
      workers: 2,
      limits,
      services: [{ name: 'drain', request_target: '/drain', source, instances: 2 }],
    }),
  );
  const lapps = startLapps(test, ['start', '--config', config]);
  const [, url] = await lapps.waitFor(
    /service drain \(raw\) at (ws:\/\/127\.0\.0\.1:\d+\/drain)\n/,
  );
  await lapps.waitFor(/started: 2 workers\n/);
  return { lapps, url: url! };
}

/** A client that records what arrives before the close frame, and the close code. */
interface Client {
  ws: WebSocket;
  received: string[];
  /** Messages that arrived after the close frame (there must be none). */
  late: number;
  first: Promise<void>;
  closed: Promise<number>;
}

async function connect(url: string): Promise<Client> {
  const ws = new WebSocket(url);
  const c: Partial<Client> = { ws, received: [], late: 0 };
  let closedYet = false;
  c.first = new Promise((resolve) => ws.once('message', () => resolve()));
  c.closed = new Promise((resolve) =>
    ws.once('close', (code: number) => {
      closedYet = true;
      resolve(code);
    }),
  );
  ws.on('message', (data: WebSocket.RawData) => {
    if (closedYet) c.late! += 1;
    else c.received!.push(data.toString());
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return c as Client;
}

/** How a connection attempt ended: 'open', 'ECONNREFUSED', 'HTTP 503', ... */
function tryConnect(url: string): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.terminate();
      resolve('open');
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(`HTTP ${res.statusCode}`);
    });
    ws.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

const CLIENTS = 20;
const PER_CLIENT = 30; // 30 x 50 ms: each connection needs 1.5 s to answer its burst

t.test(
  'SIGTERM: every message sent before it is answered before 1001; new clients refused',
  async (t) => {
    const { lapps, url } = await startDrain(t);
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => connect(url)));
    const sent = clients.map((c, k) => {
      const mine = Array.from({ length: PER_CLIENT }, (_, i) => `${k}:${i}`);
      for (const m of mine) c.ws.send(m);
      return mine;
    });
    // The first answers mean the bursts are in the server (read, or in its socket buffers).
    await Promise.all(clients.map((c) => c.first));
    const answered = (): number => clients.reduce((n, c) => n + c.received.length, 0);
    const atSignal = answered();

    const signalled = performance.now();
    lapps.child.kill('SIGTERM');
    // While the drain goes on: a new client is refused, the others are still answered.
    // The signal reaches the workers a moment after it is sent: until then a new client
    // may still get in (and is drained like the others), or be reset by the listener's
    // close if it reaches the accept queue after the worker emptied it.
    let refused = 'not tried';
    for (let i = 0; i < 100 && lapps.child.exitCode === null; i++) {
      refused = await tryConnect(url);
      if (refused !== 'open' && refused !== 'ECONNRESET') break;
      await delay(10);
    }
    t.ok(
      refused === 'ECONNREFUSED' || refused === 'HTTP 503',
      `a new client is refused (${refused})`,
    );
    const atRefusal = answered();

    const codes = await Promise.all(clients.map((c) => c.closed));
    const { code, signal } = await lapps.exited;
    const exitMs = performance.now() - signalled;

    t.ok(answered() > atRefusal, 'answers went on after the refusal');
    t.equal(
      CLIENTS * PER_CLIENT - answered(),
      0,
      `no message unanswered (${atSignal} answered at the signal)`,
    );
    t.same(
      clients.map((c) => c.received),
      sent,
      'each client got every message it sent, in order, before the close frame',
    );
    t.same(
      clients.map((c) => c.late),
      clients.map(() => 0),
      'nothing after the close frame',
    );
    t.same(new Set(codes), new Set([1001]), 'every client got 1001');
    t.same({ code, signal }, { code: 0, signal: null }, 'exit 0');
    t.ok(exitMs < scaled(10_000), `exited within the drain bound (${Math.round(exitMs)} ms)`);
    // 20, or more: the signal may be handled after a new client got in.
    t.match(lapps.stderr(), /stopping \(SIGTERM\): draining \d+ connections \(up to 10 s\)\n/);
    t.match(lapps.stderr(), /drain: onShutdown\n/, 'onShutdown ran');
    t.match(lapps.stderr(), /stopped in \d+\.\d\d s\n/);
    t.notMatch(lapps.stderr(), / (ERROR|WARN) /, 'no error or warning in the log');
  },
);

t.test('a handler that never finishes is cut at drain_timeout_ms', async (t) => {
  const { lapps, url } = await startDrain(t, { drain_timeout_ms: 500 });
  const stuck = await connect(url);
  const busy = await connect(url);
  stuck.ws.send('stuck'); // lapps.sleep(3600)
  stuck.ws.send('behind the stuck one');
  for (let i = 0; i < 5; i++) busy.ws.send(`busy ${i}`);
  await busy.first;

  const signalled = performance.now();
  lapps.child.kill('SIGTERM');
  const [busyCode, stuckCode] = await Promise.all([busy.closed, stuck.closed]);
  const { code, signal } = await lapps.exited;
  const exitMs = performance.now() - signalled;

  t.same(busy.received, ['busy 0', 'busy 1', 'busy 2', 'busy 3', 'busy 4'], 'busy: answered');
  t.equal(busyCode, 1001);
  t.same(stuck.received, [], 'stuck: no answer');
  t.equal(stuckCode, 1001, 'stuck: 1001 at the timeout');
  t.same({ code, signal }, { code: 0, signal: null }, 'exit 0');
  t.ok(exitMs >= 450, `the drain waited for the stuck handler (${Math.round(exitMs)} ms)`);
  t.ok(exitMs < scaled(500 + 4000), 'then stopped');
  t.match(lapps.stderr(), /draining 2 connections \(up to 0\.5 s\)/);
  t.match(
    lapps.stderr(),
    /drain timeout: closed 1 connection\(s\) whose handlers had not finished \(1 more message\(s\) were not handled\)/,
  );
  t.notMatch(lapps.stderr(), / ERROR /, 'no error in the log');
});

t.test('a second SIGTERM during the drain exits at once with 143', async (t) => {
  const { lapps, url } = await startDrain(t);
  const stuck = await connect(url);
  stuck.ws.send('stuck');
  await delay(100); // read and suspended
  const signalled = performance.now();
  lapps.child.kill('SIGTERM');
  await lapps.waitFor(/draining 1 connection \(up to 10 s\)\n/);
  lapps.child.kill('SIGTERM');
  const { code } = await lapps.exited;
  t.equal(code, 143);
  t.ok(performance.now() - signalled < scaled(5000), 'well before the 10 s drain bound');
  t.match(lapps.stderr(), /SIGTERM while stopping: exiting now/);
});
