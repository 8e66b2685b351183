/**
 * Fairness on one worker: handler_timeout_ms bounds one handler call (not a read's batch),
 * and a connection's backlog is served in slices, so one client that floods a slow service
 * neither gets the instance restarted nor freezes the other clients of the worker. The
 * flood stays in order and complete; its client is held back by TCP, not by errors.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import type WebSocket from 'ws';

import { testPki } from '../helpers/pki.js';
import { repoRoot, startTestServer, type TestServer } from '../helpers/server.js';
import { Op, RawClient, delay, scaled, timeScale, type FrameSpec } from '../helpers/raw-client.js';
import { openWs, until } from '../helpers/ws.js';

const busy = {
  name: 'busy',
  request_target: '/busy',
  source: path.join(repoRoot, 'test', 'lua', 'services', 'fair', 'busy.lua'),
  instances: 1,
};

/** Frames the raw client got so far, as text. */
const texts = (c: RawClient): string[] =>
  c.frames.filter((f) => f.opcode === Op.Text).map((f) => f.payload.toString());

/** Round trips of `ws`, one message at a time, every `everyMs`, until `stop()` is true. */
async function pingLoop(
  ws: WebSocket,
  everyMs: number,
  stop: () => boolean,
): Promise<{ rtts: number[]; failure?: string }> {
  const rtts: number[] = [];
  let i = 0;
  while (!stop()) {
    const tag = `neighbour ${i++}`;
    const started = performance.now();
    const answer = await new Promise<string>((resolve) => {
      const onMessage = (d: WebSocket.RawData): void => {
        ws.off('close', onClose);
        resolve(String(d));
      };
      const onClose = (code: number, reason: Buffer): void => {
        ws.off('message', onMessage);
        resolve(`closed ${code} ${String(reason)}`);
      };
      ws.once('message', onMessage);
      ws.once('close', onClose);
      ws.send(tag);
    });
    if (answer !== tag) return { rtts, failure: answer };
    rtts.push(performance.now() - started);
    await delay(everyMs);
  }
  return { rtts };
}

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;

interface FloodResult {
  floodMs: number;
  rtts: number[];
  max: number;
  p99: number;
}

/**
 * Writes `payloads` in one write from a raw client while a neighbour on the same worker
 * sends a message every 10 ms; checks that the flood is answered completely, in order,
 * without any close, and returns the neighbour's round trips.
 */
async function flood(t: Test, server: TestServer, payloads: string[]): Promise<FloodResult> {
  // Also over wss (LAPPS_TEST_TLS=1): records are decrypted a slice at a time too.
  const neighbour = await openWs(
    server.url('/busy'),
    5000,
    server.tls ? { ca: testPki().caPem } : {},
  );
  const flooder = await RawClient.connect(server.port, { path: '/busy' });
  t.teardown(() => flooder.destroy());
  let flooding = true;
  const pings = pingLoop(neighbour, 10, () => !flooding);
  await delay(50);
  const started = Date.now();
  flooder.send(...payloads.map((payload) => ({ opcode: Op.Text, payload })));
  // Counted as frames arrive: rescanning thousands of frames every poll would make this
  // process, which also times the neighbour, the bottleneck.
  let answers = 0;
  let scanned = 0;
  const answered = (): boolean => {
    for (; scanned < flooder.frames.length; scanned++) {
      if (flooder.frames[scanned]!.opcode === Op.Text) answers++;
    }
    return answers >= payloads.length || flooder.ended !== undefined;
  };
  try {
    await until(answered, scaled(30000), 'every answer of the flood');
  } finally {
    flooding = false;
  }
  const floodMs = Date.now() - started;
  const { rtts, failure } = await pings;
  neighbour.close();

  const got = texts(flooder);
  t.equal(got.length, payloads.length, 'every message of the flood answered');
  t.ok(
    got.every((m, i) => m === payloads[i]),
    'in order',
  );
  t.same(
    flooder.frames.filter((f) => f.opcode === Op.Close).map((f) => f.payload.readUInt16BE(0)),
    [],
    'the flooder was not closed',
  );
  t.equal(failure, undefined, 'the neighbour was never closed');
  const sorted = [...rtts].sort((a, b) => a - b);
  const p50 = percentile(sorted, 50);
  const p99 = percentile(sorted, 99);
  const max = sorted[sorted.length - 1] ?? Infinity;
  t.comment(
    `flood ${floodMs} ms; neighbour round trips: ${rtts.length}, p50 ${p50.toFixed(1)} ms, ` +
      `p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms`,
  );
  return { floodMs, rtts, max, p99 };
}

t.test('a flood to a 2 ms/message service does not stall its neighbour', async (t) => {
  const server = await startTestServer({ workers: 1, services: [busy] });
  t.teardown(() => server.stop());
  // 3,000 messages in one write: about 6 s of handler time in one read.
  const { rtts, p99, max } = await flood(
    t,
    server,
    Array.from({ length: 3000 }, (_, i) => `f${i}`),
  );
  t.ok(rtts.length >= 50, `the neighbour was served throughout (${rtts.length} round trips)`);
  // Generous bounds for a loaded machine: without slicing the worker freezes for seconds.
  t.ok(p99 < 200 * timeScale, `neighbour p99 ${p99.toFixed(1)} ms`);
  t.ok(max < 1000 * timeScale, `neighbour worst ${max.toFixed(1)} ms`);
  t.same(server.errors(), [], 'no watchdog, no restart, no error in the log');
});

t.test('a slice is bounded in time after cheap messages made it long', async (t) => {
  const server = await startTestServer({ workers: 1, services: [busy] });
  t.teardown(() => server.stop());
  // Cheap messages first: the worker learns to hand over thousands per slice.
  await flood(
    t,
    server,
    Array.from({ length: 20000 }, (_, i) => `0ms ${i}`),
  );
  // Then 100 messages of 25 ms in one read: 2.5 s if one slice took them all.
  const { max } = await flood(
    t,
    server,
    Array.from({ length: 100 }, (_, i) => `25ms ${i}`),
  );
  t.ok(max < 500 * timeScale, `neighbour worst ${max.toFixed(1)} ms`);
  t.same(server.errors(), [], 'no error in the log');
});

t.test('control frames keep their place behind a backlog', async (t) => {
  const server = await startTestServer({ workers: 1, services: [busy] });
  t.teardown(() => server.stop());
  const c = await RawClient.connect(server.port, { path: '/busy' });
  t.teardown(() => c.destroy());
  // One write: 100 messages, a ping, 100 more, a close. Served over many loop turns.
  const text = (i: number): FrameSpec => ({ opcode: Op.Text, payload: `m${i}` });
  c.send(
    ...Array.from({ length: 100 }, (_, i) => text(i)),
    { opcode: Op.Ping, payload: 'p' },
    ...Array.from({ length: 100 }, (_, i) => text(100 + i)),
    { opcode: Op.Close, payload: Buffer.from([0x03, 0xe8]) },
  );
  t.equal(await c.waitEnd(scaled(10000)), 'fin', 'closed cleanly after the answers');
  const seen = c.frames.map((f) =>
    f.opcode === Op.Text ? f.payload.toString() : f.opcode === Op.Pong ? 'pong' : `op ${f.opcode}`,
  );
  t.same(
    seen,
    [
      ...Array.from({ length: 100 }, (_, i) => `m${i}`),
      'pong',
      ...Array.from({ length: 100 }, (_, i) => `m${100 + i}`),
      'op 8',
    ],
    'every message answered, the pong and the close in stream order',
  );
  t.same(server.errors(), []);
});

t.test('handler_timeout_ms bounds one handler call, not a batch', async (t) => {
  const server = await startTestServer({
    workers: 1,
    services: [{ ...busy, handler_timeout_ms: 300 }],
  });
  t.teardown(() => server.stop());
  const c = await RawClient.connect(server.port, { path: '/busy' });
  t.teardown(() => c.destroy());
  // 16 calls of 60 ms arrive in one read: 960 ms in all, each well under 300 ms.
  const count = 16;
  c.send(...Array.from({ length: count }, (_, i) => ({ opcode: Op.Text, payload: `60ms ${i}` })));
  await until(
    () => texts(c).length >= count || c.ended !== undefined,
    scaled(10000),
    'every answer',
  );
  t.same(
    texts(c),
    Array.from({ length: count }, (_, i) => `60ms ${i}`),
    'every call answered, in order',
  );
  t.same(server.errors(), [], 'nothing stopped by the watchdog');

  // A call that really runs over the limit is still stopped.
  c.send({ opcode: Op.Text, payload: '1000ms' });
  const close = await c.expectClose(scaled(5000));
  t.equal(close.code, 1011, 'the runaway call is stopped');
  await until(() => server.errors().length > 0, scaled(5000), 'the watchdog report');
  t.match(server.errors().join('\n'), /stopped after running for more than 300 ms/);
});
