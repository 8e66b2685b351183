/**
 * Real clients against the bundled echo service: the `ws` library, Python `websockets`
 * (Debian python3-websockets, run with /usr/bin/python3) and headless Chromium driven by
 * playwright-core (Debian chromium at /usr/bin/chromium). Each sends text and binary
 * messages, small and large, and closes normally.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';

import { chromium } from 'playwright-core';
import t from 'tap';
import WebSocket from 'ws';

import { echoSource, startTestServer } from '../helpers/server.js';

const PYTHON = '/usr/bin/python3';
const CHROMIUM = '/usr/bin/chromium';

// The Chromium page is about:blank, whose origin is opaque: its handshakes say "Origin:
// null", which the same-origin default refuses (docs/security.md). ws and Python send none.
const server = await startTestServer({
  services: [
    { name: 'echo', request_target: '/echo', source: echoSource, instances: 2, origins: ['null'] },
  ],
});
t.teardown(() => server.stop());

/** Resolves with the next message of a `ws` client (rejects on close, error or timeout). */
function nextMessage(
  ws: WebSocket,
  timeoutMs = 5000,
): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error('timed out waiting for a message')), timeoutMs);
    const onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
      done(undefined, {
        data: Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]),
        isBinary,
      });
    };
    const onClose = (code: number): void => done(new Error(`closed (${code}) while waiting`));
    const onError = (e: Error): void => done(e);
    function done(e?: Error, v?: { data: Buffer; isBinary: boolean }): void {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('error', onError);
      if (e) reject(e);
      else resolve(v!);
    }
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.on('error', onError);
  });
}

function opened(ws: WebSocket, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ws: open timed out')), timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

function closed(ws: WebSocket, timeoutMs = 5000): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ws: close timed out')), timeoutMs);
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

t.test('ws client: text, binary, 1 MiB, ping, close', async (t) => {
  // perMessageDeflate is offered and must be declined (no extensions yet).
  const ws = new WebSocket(server.url('/echo'), { perMessageDeflate: true });
  await opened(ws);
  t.equal(ws.extensions, '', 'no extension negotiated');
  t.equal(ws.protocol, '', 'no subprotocol');

  ws.send('hello from ws κόσμε 𝄞');
  const text = await nextMessage(ws);
  t.same([text.isBinary, text.data.toString()], [false, 'hello from ws κόσμε 𝄞'], 'text echoed');

  const bin = Buffer.from([0, 1, 2, 253, 254, 255]);
  ws.send(bin);
  const b = await nextMessage(ws);
  t.ok(b.isBinary && b.data.equals(bin), 'binary echoed');

  const big = Buffer.alloc(1 << 20, 'lapps ');
  ws.send(big.toString());
  const m = await nextMessage(ws);
  t.ok(!m.isBinary && m.data.equals(big), '1 MiB text echoed');

  const pong = new Promise<Buffer>((resolve) => ws.once('pong', resolve));
  ws.ping('are you there');
  t.equal((await pong).toString(), 'are you there', 'pong with the ping payload');

  const end = closed(ws);
  ws.close(4000, 'bye');
  t.same(await end, { code: 4000, reason: '' }, 'close 4000 echoed');
});

t.test('ws client: many clients at once', async (t) => {
  const clients = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const ws = new WebSocket(server.url('/echo'));
      await opened(ws);
      ws.send(`client ${i}`);
      const m = await nextMessage(ws);
      const end = closed(ws);
      ws.close(1000);
      const c = await end;
      return m.data.toString() === `client ${i}` && c.code === 1000;
    }),
  );
  t.equal(clients.filter(Boolean).length, 50, 'all 50 echoed and closed with 1000');
});

const PY_CLIENT = `
import asyncio, json, sys
import websockets

async def main(url):
    out = {}
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send("hello from python κόσμε 𝄞")
        out["text"] = await ws.recv()
        await ws.send(bytes([0, 1, 2, 253, 254, 255]))
        out["binary"] = list(await ws.recv())
        big = "x" * (1 << 20)
        await ws.send(big)
        out["big"] = (await ws.recv()) == big
        pong = await ws.ping(b"py")
        await asyncio.wait_for(pong, 5)
        out["pong"] = True
        out["extensions"] = [str(e) for e in ws.extensions]
    out["close_code"] = ws.close_code
    print(json.dumps(out))

asyncio.run(asyncio.wait_for(main(sys.argv[1]), 20))
`;

t.test('Python websockets client', async (t) => {
  if (!existsSync(PYTHON)) {
    t.fail(`${PYTHON} missing: apt-get install -y python3 python3-websockets`);
    return;
  }
  const result = await new Promise<{ out: string; err: string; code: number | null }>((resolve) => {
    execFile(PYTHON, ['-c', PY_CLIENT, server.url('/echo')], { timeout: 30_000 }, (e, out, err) =>
      resolve({ out, err, code: e ? ((e as { code?: number }).code ?? -1) : 0 }),
    );
  });
  if (result.code !== 0) {
    t.fail(
      `python client failed (exit ${result.code}): ${result.err.trim().split('\n').slice(-3).join(' | ')}`,
    );
    return;
  }
  const r = JSON.parse(result.out) as Record<string, unknown>;
  t.same(
    r,
    {
      text: 'hello from python κόσμε 𝄞',
      binary: [0, 1, 2, 253, 254, 255],
      big: true,
      pong: true,
      extensions: [],
      close_code: 1000,
    },
    'python client saw every echo and a normal close',
  );
});

t.test('headless Chromium', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(`${CHROMIUM} missing: apt-get install -y chromium`);
    return;
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Chromium 14x+ blocks about:blank (a public context) from reaching loopback.
      '--disable-features=LocalNetworkAccessChecks',
    ],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  await page.goto('about:blank');
  // This function runs in the page: `WebSocket` there is the browser's, whose API the
  // imported `ws` types mirror closely enough to type-check it.
  const evaluation = page.evaluate(async (url: string) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    const queue: unknown[] = [];
    const waiters: ((v: unknown) => void)[] = [];
    ws.onmessage = (e) => {
      const w = waiters.shift();
      if (w) w(e.data);
      else queue.push(e.data);
    };
    const next = (): Promise<unknown> =>
      queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiters.push(r));
    const closedP = new Promise<{ code: number; wasClean: boolean }>((resolve) => {
      ws.onclose = (e) => resolve({ code: e.code, wasClean: e.wasClean });
    });
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error('websocket error'));
    });
    ws.send('hello from chromium κόσμε 𝄞');
    const text = await next();
    ws.send(new Uint8Array([0, 1, 2, 253, 254, 255]));
    const binary = Array.from(new Uint8Array((await next()) as ArrayBuffer));
    const big = 'y'.repeat(1 << 20);
    ws.send(big);
    const bigOk = (await next()) === big;
    const extensions = ws.extensions;
    const protocol = ws.protocol;
    ws.close(1000, 'done');
    const close = await closedP;
    return { text, binary, bigOk, extensions, protocol, ...close };
  }, server.url('/echo'));
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    evaluation,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the page script timed out')), 30_000);
    }),
  ]).finally(() => clearTimeout(timer));
  t.same(
    result,
    {
      text: 'hello from chromium κόσμε 𝄞',
      binary: [0, 1, 2, 253, 254, 255],
      bigOk: true,
      extensions: '',
      protocol: '',
      code: 1000,
      wasClean: true,
    },
    'Chromium saw every echo and a clean close',
  );
});

t.test('no error logged', async (t) => {
  t.same(server.errors(), []);
});
