/**
 * Memory is returned after a burst (docs/memory.md): a real `lapps start` process, its
 * resident size read from /proc/<pid>/status before, during and after. After a burst of
 * 16 MiB echoes, or a drained mqr queue, the idle server settles near its size before the
 * burst within seconds. Needs dist/ and the built addon (npm test builds both first).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';
import WebSocket from 'ws';

import { repoRoot } from '../helpers/server.js';
import { randomKey, scaled } from '../helpers/raw-client.js';

const MiB = 1024 * 1024;
const bin = path.join(repoRoot, 'bin', 'lapps.js');

/** Resident set of a process in bytes (VmRSS). */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Lapps {
  child: ChildProcess;
  url: string;
}

/** Starts `lapps start` with `config` (port 0) and resolves with the URL of `service`. */
async function startLapps(
  test: Pick<typeof t, 'teardown'>,
  config: Record<string, unknown>,
  service: string,
): Promise<Lapps> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lapps-memory-'));
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, [bin, 'start', '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  test.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  child.stdout!.resume();
  let err = '';
  const re = new RegExp(`service ${service} \\(raw\\) at (ws://\\S+)\\n`);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start line:\n${err}`)), 20_000);
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
      const m = re.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', () => reject(new Error(`lapps exited:\n${err}`)));
  });
  return { child, url };
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: 64 * MiB });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** RSS once it has stopped moving (start-up settles), sampled every 250 ms. */
async function settledRss(pid: number): Promise<number> {
  let last = rss(pid);
  for (let i = 0; i < 20; i++) {
    await sleep(250);
    const now = rss(pid);
    if (Math.abs(now - last) < MiB) return now;
    last = now;
  }
  return last;
}

/** Polls RSS until it is within `bound` of `idle`; resolves with the last value. */
async function settlesTo(pid: number, idle: number, bound: number, ms: number): Promise<number> {
  const end = Date.now() + ms;
  let now = rss(pid);
  while (now > idle + bound && Date.now() < end) {
    await sleep(200);
    now = rss(pid);
  }
  return now;
}

const mb = (n: number): string => `${Math.round(n / MiB)} MiB`;

t.test('after 20 echoes of 16 MiB an idle server settles near its size before', async (t) => {
  const { child, url } = await startLapps(
    t,
    {
      listeners: [{ host: '127.0.0.1', port: 0 }],
      workers: 2,
      services: [
        {
          name: 'echo',
          request_target: '/echo',
          source: path.join(repoRoot, 'services', 'echo', 'echo.lua'),
          instances: 2,
        },
      ],
    },
    'echo',
  );
  const pid = child.pid!;
  const clients = await Promise.all(Array.from({ length: 20 }, () => open(url)));
  const idle = await settledRss(pid);
  let peak = idle;
  const sampler = setInterval(() => (peak = Math.max(peak, rss(pid))), 50);
  const payload = Buffer.alloc(16 * MiB - 1024, 7);
  // Twenty clients, one message each, all at once: both workers are busy.
  await Promise.all(
    clients.map(
      (ws) =>
        new Promise<void>((resolve, reject) => {
          ws.once('message', (d: Buffer) =>
            d.length === payload.length ? resolve() : reject(new Error(`${d.length} bytes`)),
          );
          ws.once('close', (code) => reject(new Error(`closed with ${code}`)));
          ws.send(payload);
        }),
    ),
  );
  clearInterval(sampler);
  t.ok(peak - idle > 64 * MiB, `the burst used memory (idle ${mb(idle)}, peak ${mb(peak)})`);
  // The clients stay connected: the server is idle, not empty.
  const after = await settlesTo(pid, idle, 24 * MiB, scaled(10_000));
  t.ok(after <= idle + 24 * MiB, `settled at ${mb(after)} (idle ${mb(idle)}, peak ${mb(peak)})`);
  for (const ws of clients) ws.close();
});

t.test('after an mqr queue of 100 KB items is drained the server settles too', async (t) => {
  const { child, url } = await startLapps(
    t,
    {
      listeners: [{ host: '127.0.0.1', port: 0 }],
      workers: 2,
      services: [
        {
          name: 'mqrbound',
          request_target: '/q',
          source: path.join(repoRoot, 'test', 'lua', 'services', 'mqrbound', 'mqrbound.lua'),
          preload: ['mqr'],
          memory_limit: 32 * MiB,
        },
      ],
    },
    'mqrbound',
  );
  const pid = child.pid!;
  const producer = await open(url);
  const consumer = await open(url);
  const idle = await settledRss(pid);
  let peak = idle;
  const sampler = setInterval(() => (peak = Math.max(peak, rss(pid))), 50);
  const filled = new Promise<string>((resolve) =>
    producer.once('message', (d: Buffer) => resolve(d.toString())),
  );
  // 3,000 x 100 KB: the queue's byte bound (limits.mqr_max_bytes, 64 MiB) holds the
  // producer back until the consumer takes items.
  producer.send('fill jobs 3000 100000');
  let taken = 0;
  let done = false;
  void filled.then(() => (done = true));
  const deadline = Date.now() + scaled(30_000);
  while ((!done || taken < 3000) && Date.now() < deadline) {
    await sleep(100);
    taken += Number(
      await new Promise<string>((resolve) => {
        consumer.once('message', (d: Buffer) => resolve(d.toString()));
        consumer.send('drain jobs');
      }),
    );
  }
  clearInterval(sampler);
  t.equal(await filled, 'posted 3000');
  t.equal(taken, 3000, 'every item taken');
  t.ok(peak - idle < 128 * MiB, `queued bytes bounded: peak ${mb(peak)}, idle ${mb(idle)}`);
  const after = await settlesTo(pid, idle, 24 * MiB, scaled(10_000));
  t.ok(after <= idle + 24 * MiB, `settled at ${mb(after)} (idle ${mb(idle)}, peak ${mb(peak)})`);
  producer.close();
  consumer.close();
});

/** Opens a WebSocket over a raw socket (no client library per connection); resolves on the 101. */
function openRaw(url: URL): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(url.port), url.hostname, () => {
      sock.write(
        `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${randomKey()}\r\n` +
          'Sec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      sock.off('data', onData);
      if (head.startsWith('HTTP/1.1 101')) resolve(sock);
      else reject(new Error(head.split('\r\n')[0]));
    };
    sock.on('data', onData);
    sock.once('error', reject);
  });
}

t.test(
  'an idle connection holds a few hundred bytes; records are reused after a release',
  async (t) => {
    const { child, url } = await startLapps(
      t,
      {
        listeners: [{ host: '127.0.0.1', port: 0 }],
        workers: 1,
        services: [
          {
            name: 'echo',
            request_target: '/echo',
            source: path.join(repoRoot, 'services', 'echo', 'echo.lua'),
          },
        ],
      },
      'echo',
    );
    const pid = child.pid!;
    const target = new URL(url);
    const idle = await settledRss(pid);
    const n = 6000;
    const socks: net.Socket[] = [];
    // In waves of 200 handshakes: a flood, but not a SYN backlog overflow.
    for (let i = 0; i < n; i += 200) {
      socks.push(...(await Promise.all(Array.from({ length: 200 }, () => openRaw(target)))));
    }
    // The handshakes' buffers are given back when the worker goes quiet (a second later).
    await sleep(3000);
    const held = await settledRss(pid);
    const perConnection = (held - idle) / n;
    // 1.3-1.7 KB before issue 13, 584 before the record went from 328 to 136 bytes and its
    // blocks from malloc to the worker's slab (docs/memory.md); under 300 now. The bound
    // leaves room for the RSS's noise (settledRss allows 1 MiB of drift).
    t.ok(perConnection < 400, `${Math.round(perConnection)} bytes per idle connection (${n} held)`);
    for (const s of socks) s.destroy();
    await sleep(3000);
    // The records' blocks were released: new connections are served from new ones.
    const more = await Promise.all(Array.from({ length: 50 }, () => openRaw(target)));
    const echoed = await new Promise<string>((resolve) => {
      const s = more[0]!;
      s.once('data', (d: Buffer) => resolve(d.subarray(2).toString()));
      const payload = Buffer.from('after');
      const mask = Buffer.from([1, 2, 3, 4]);
      const masked = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!));
      s.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
    });
    t.equal(echoed, 'after', 'a connection made after the release echoes');
    for (const s of more) s.destroy();
  },
);
