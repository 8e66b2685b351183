/**
 * Garbage and abuse never take the server down or stall other clients: random bytes
 * before and after the handshake, handshakes trickled slowly, thousands of connections
 * dropped mid-handshake, a client that never reads (closed as a slow consumer once over
 * outbound_high_water_mark). Also the idle timeout (close 1001) and server pings.
 */
import crypto from 'node:crypto';
import net from 'node:net';

import t from 'tap';

import { startTestServer } from '../helpers/server.js';
import {
  delay,
  encodeFrame,
  expectEcho,
  expectNormalClose,
  expectServerClose,
  handshakeRequest,
  Op,
  payloadFor,
  RawClient,
  scaled,
  type Asserts,
} from '../helpers/raw-client.js';

const server = await startTestServer();
t.teardown(() => server.stop());

/** Echo round trips on a fresh connection; resolves with the slowest round trip in ms. */
async function echoRoundTrips(t: Asserts, port: number, count: number): Promise<number> {
  const c = await RawClient.connect(port);
  let worst = 0;
  let ok = 0;
  for (let i = 0; i < count; i++) {
    const payload = payloadFor(i % 2 ? Op.Binary : Op.Text, 100 + i);
    const start = Date.now();
    c.send({ opcode: i % 2 ? Op.Binary : Op.Text, payload });
    const m = await c.readMessage().catch(() => undefined);
    if (m?.payload.equals(payload)) ok++;
    worst = Math.max(worst, Date.now() - start);
  }
  t.equal(ok, count, `${count} echoes intact`);
  await expectNormalClose(t, c);
  return worst;
}

interface Background {
  /** Resolves once the first round trip is done (so the client is really running). */
  started: Promise<void>;
  stop(): Promise<{ count: number; worst: number; failure?: string }>;
}

/** Keeps echoing on one connection until `stop()`; reports round trips and failures. */
function backgroundEcho(port: number): Background {
  let running = true;
  let markStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const done = (async () => {
    let count = 0;
    let worst = 0;
    let c: RawClient | undefined;
    try {
      c = await RawClient.connect(port);
      while (running) {
        const payload = payloadFor(Op.Text, 64 + (count % 200));
        const start = Date.now();
        c.send({ opcode: Op.Text, payload });
        const m = await c.readMessage();
        if (!m.payload.equals(payload)) throw new Error(`echo ${count} corrupted`);
        worst = Math.max(worst, Date.now() - start);
        count++;
        markStarted();
        await delay(5);
      }
      const r = await c.closeHandshake();
      if (r.code !== 1000) throw new Error(`close code ${r.code}`);
      return { count, worst };
    } catch (e) {
      c?.destroy();
      return { count, worst, failure: (e as Error).message };
    } finally {
      markStarted();
    }
  })();
  return {
    started,
    stop: () => {
      running = false;
      return done;
    },
  };
}

/** Runs `tasks` with at most `n` in flight. */
async function pool<T>(n: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]!();
      }
    }),
  );
  return out;
}

/** Opens a TCP connection, runs `use`, and makes sure it is gone afterwards. */
function rawSocket(port: number, use: (s: net.Socket) => Promise<void> | void): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => s.destroy(), scaled(5000));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    s.on('connect', () => {
      void Promise.resolve(use(s)).catch(() => s.destroy());
    });
    s.resume();
  });
}

t.test('random garbage on many connections while a client keeps echoing', async (t) => {
  const bg = backgroundEcho(server.port);
  await bg.started;
  let seed = 1;
  const garbage = (n: number): Buffer => {
    seed++;
    return crypto.createHash('sha512').update(String(seed)).digest().subarray(0, Math.min(64, n));
  };
  const tasks: (() => Promise<void>)[] = [];
  for (let i = 0; i < 60; i++) {
    // Before the handshake: pure noise, noise ending in CRLFCRLF, a request line then noise.
    tasks.push(() =>
      rawSocket(server.port, async (s) => {
        const variants = [
          crypto.randomBytes(1 + (i % 7) * 300),
          Buffer.concat([crypto.randomBytes(200), Buffer.from('\r\n\r\n')]),
          Buffer.concat([Buffer.from('GET /echo HTTP/1.1\r\n'), crypto.randomBytes(500)]),
        ];
        s.write(variants[i % 3]!);
        await delay(20);
        s.end();
      }),
    );
    // After the handshake: random bytes as frames, in random chops.
    tasks.push(async () => {
      const c = await RawClient.connect(server.port);
      const noise = Buffer.concat(Array.from({ length: 40 }, (_, k) => garbage(17 + k)));
      for (let at = 0; at < noise.length && !c.ended; at += 1 + (at % 97)) {
        c.write(noise.subarray(at, at + 1 + (at % 97)));
        await delay(1);
      }
      // The server either failed the connection or waits for the rest of a frame.
      await c.waitEnd(200);
      c.destroy();
    });
    // After the handshake: random but well-masked frames with random opcodes and bits.
    tasks.push(async () => {
      const c = await RawClient.connect(server.port);
      for (let k = 0; k < 20 && !c.ended; k++) {
        const g = garbage(64);
        c.send({
          opcode: g[0]! & 0x0f,
          rsv: g[1]! & 7 ? 0 : g[2]! & 7,
          fin: (g[3]! & 1) === 0,
          payload: g.subarray(4, 4 + (g[4]! % 60)),
        });
      }
      await c.waitEnd(200);
      c.destroy();
    });
  }
  await pool(30, tasks);
  const r = await bg.stop();
  t.equal(r.failure, undefined, 'the background client was never disturbed');
  t.ok(r.count > 0, `${r.count} background echoes`);
  t.ok(r.worst < scaled(1000), `slowest background round trip ${r.worst} ms`);
  await echoRoundTrips(t, server.port, 20);
});

t.test('slow handshakes (one byte per 200 ms) do not stall others', async (t) => {
  const trickles = Array.from({ length: 8 }, async () => {
    const c = await RawClient.open(server.port);
    const key = crypto.randomBytes(16).toString('base64');
    const request = Buffer.from(handshakeRequest({ key }));
    const slowPart = 12; // ~2.4 s of trickling, then the rest at once
    for (let i = 0; i < slowPart; i++) {
      c.write(request.subarray(i, i + 1));
      await delay(200);
    }
    c.write(request.subarray(slowPart));
    const res = await c.readHttpResponse().catch(() => undefined);
    c.send({ opcode: Op.Text, payload: 'trickled' });
    const m = await c.readMessage().catch(() => undefined);
    c.destroy();
    return res?.status === 101 && m?.payload.toString() === 'trickled';
  });
  await delay(300);
  const worst = await echoRoundTrips(t, server.port, 50);
  t.ok(worst < scaled(500), `slowest round trip during the trickle: ${worst} ms`);
  const start = Date.now();
  const other = await RawClient.connect(server.port);
  t.ok(Date.now() - start < scaled(500), 'a new handshake completes meanwhile');
  other.destroy();
  t.same(await Promise.all(trickles), Array(8).fill(true), 'every trickled handshake completed');
});

t.test('10,000 connections dropped mid-handshake, then a client still echoes', async (t) => {
  const request = Buffer.from(handshakeRequest());
  const tasks = Array.from(
    { length: 10000 },
    (_, i) => () =>
      rawSocket(server.port, async (s) => {
        const mode = i % 4;
        if (mode === 1) s.write(request.subarray(0, 1 + (i % (request.length - 1))));
        if (mode === 2) s.write(request.subarray(0, request.length - 2));
        if (mode === 3) {
          s.write(request.subarray(0, 30));
          await delay(1);
          s.resetAndDestroy();
          return;
        }
        s.destroy();
      }),
  );
  const start = Date.now();
  await pool(100, tasks);
  t.comment(`10,000 dropped connections in ${Date.now() - start} ms`);
  await echoRoundTrips(t, server.port, 20);
});

t.test('a client that never reads is closed as a slow consumer; others are served', async (t) => {
  const HWM = 256 * 1024;
  const slow = await startTestServer({ limits: { outbound_high_water_mark: HWM } });
  t.teardown(() => slow.stop());
  const c = await RawClient.connect(slow.port);
  c.socket.pause(); // never read: the echoes pile up in the server
  const payload = payloadFor(Op.Binary, 128 * 1024);
  const frame = encodeFrame({ opcode: Op.Binary, payload });
  const bg = backgroundEcho(slow.port);
  await bg.started;
  let sent = 0;
  const deadline = Date.now() + scaled(15_000);
  // Keep writing until the server drops us; 256 MiB is far beyond any socket buffering.
  while (!c.socket.destroyed && !c.socket.writableEnded && sent < 2048 && Date.now() < deadline) {
    const flushed = c.socket.write(frame);
    sent++;
    if (!flushed) {
      await Promise.race([
        new Promise((resolve) => c.socket.once('drain', resolve)),
        new Promise((resolve) => c.socket.once('close', resolve)),
        delay(200),
      ]);
    }
  }
  t.comment(`sent ${sent} × 128 KiB before the server gave up`);
  c.socket.resume();
  const tcp = await c.waitEnd(scaled(5000));
  t.not(tcp, 'timeout', `the slow consumer was disconnected (${tcp})`);
  t.ok(sent < 2048, 'disconnected before 256 MiB were sent');
  await delay(100);
  const r = await bg.stop();
  t.equal(r.failure, undefined, 'another client was served throughout');
  t.ok(r.count > 0, `${r.count} echoes for the other client`);
  await echoRoundTrips(t, slow.port, 10);
  t.same(slow.errors(), [], 'no error logged');
});

t.test('idle timeout closes with 1001; traffic keeps a connection open', async (t) => {
  const IDLE = 400;
  const idle = await startTestServer({
    limits: { idle_timeout_ms: IDLE, ping_interval_ms: 0, close_timeout_ms: 500 },
  });
  t.teardown(() => idle.stop());

  const quiet = await RawClient.connect(idle.port);
  const start = Date.now();
  await t.test('a silent client gets 1001', async (t) => {
    await expectServerClose(t, quiet, 1001, { timeoutMs: scaled(IDLE + 3000), requireFin: true });
    const ms = Date.now() - start;
    t.ok(ms >= IDLE - 50, `not before the idle timeout (${ms} ms)`);
    t.ok(ms <= scaled(IDLE + 1500), 'soon after the idle timeout');
  });

  const busy = await RawClient.connect(idle.port);
  await t.test('a client sending every 100 ms stays open past the timeout', async (t) => {
    for (let i = 0; i < 10; i++) {
      busy.send({ opcode: Op.Text, payload: `tick ${i}` });
      await expectEcho(t, busy, Op.Text, `tick ${i}`);
      await delay(100);
    }
    await expectNormalClose(t, busy);
  });

  const deaf = await RawClient.connect(idle.port);
  await t.test(
    'a client that never answers the 1001 is dropped after close_timeout_ms',
    async (t) => {
      const r = await deaf.expectClose(scaled(IDLE + 3000), { reply: false });
      t.equal(r.code, 1001, 'close 1001');
      t.not(r.tcp, 'timeout', `TCP ended without our reply (${r.tcp})`);
    },
  );
  t.same(idle.errors(), [], 'no error logged');
});

t.test(
  'server pings arrive when ping_interval_ms is short; pongs keep the client alive',
  async (t) => {
    const pinging = await startTestServer({
      limits: { ping_interval_ms: 150, idle_timeout_ms: 1000 },
    });
    t.teardown(() => pinging.stop());
    const c = await RawClient.connect(pinging.port);
    const start = Date.now();
    let pings = 0;
    let answered = true;
    while (Date.now() - start < 2000) {
      const f = await c.nextFrame(scaled(1000)).catch(() => undefined);
      if (!f) {
        answered = false;
        break;
      }
      if (f.opcode !== Op.Ping) {
        t.fail(`unexpected frame opcode ${f.opcode}`);
        break;
      }
      t.ok(f.payload.length <= 125 && !f.masked, 'a valid server ping');
      pings++;
      c.send({ opcode: Op.Pong, payload: f.payload });
    }
    t.ok(answered, 'pings kept coming');
    t.ok(pings >= 3, `${pings} pings in 2 s (interval 150 ms)`);
    t.equal(c.ended, undefined, 'a client answering pings outlives idle_timeout_ms');
    c.send({ opcode: Op.Text, payload: 'still here' });
    const m = await c.readMessage();
    t.equal(m.payload.toString(), 'still here', 'echo after the pings');
    await expectNormalClose(t, c);

    const deaf = await RawClient.connect(pinging.port);
    const r = await deaf.expectClose(scaled(4000)).catch((e: Error) => e);
    if (r instanceof Error) t.fail(`a client ignoring pings was not closed: ${r.message}`);
    else {
      t.ok(
        r.before.every((f) => f.opcode === Op.Ping),
        'only pings before the close',
      );
      t.equal(r.code, 1001, 'a client ignoring pings is closed with 1001 after idle_timeout_ms');
    }
    t.same(pinging.errors(), [], 'no error logged');
  },
);

t.test('no error logged', async (t) => {
  t.same(server.errors(), []);
});
