/**
 * No malloc or free per loop turn in steady state: a worker that echoes for connections that
 * are already open allocates nothing per message. The server runs with
 * test/perf/alloc-count.c preloaded, which counts the malloc-family calls of every thread;
 * the worker thread is the one named lapps-io-0. Counted: 10,000 messages echoed by 100
 * open connections (after a warm-up of the same size), through the Lua echo and the C echo,
 * one message in flight per connection (one loop turn per message or few) and 16 in flight
 * (many messages per turn).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import t from 'tap';
import WebSocket from 'ws';

import { repoRoot, startLapps } from '../helpers/lapps-cli.js';
import { testPki } from '../helpers/pki.js';
import { WAIT_MS } from '../helpers/raw-client.js';

const buildDir = path.join(repoRoot, 'build', 'Release');
const counter = path.join(buildDir, 'liblapps_alloc_count.so');

interface Counts {
  allocs: number;
  frees: number;
}

/** Asks the preloaded counter for its per-thread counts; returns the named thread's. */
async function countsOf(base: string, pid: number, thread: string): Promise<Counts> {
  const out = `${base}.out`;
  rmSync(out, { force: true });
  writeFileSync(`${base}.req`, '');
  const deadline = Date.now() + WAIT_MS;
  while (!existsSync(out)) {
    if (Date.now() > deadline) throw new Error('the allocation counter did not answer');
    await new Promise((r) => setTimeout(r, 10));
  }
  for (const line of readFileSync(out, 'utf8').trim().split('\n')) {
    const [tid, allocs, frees] = line.split(' ').map(Number);
    let comm = '';
    try {
      comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    } catch {
      continue; // a thread that has ended
    }
    if (comm === thread) return { allocs: allocs!, frees: frees! };
  }
  throw new Error(`no thread named ${thread} in process ${pid}`);
}

/** A port nobody listens on now (the wss listener's: the CLI prints the first listener's). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** Opens n connections to url. */
async function openAll(url: string, n: number): Promise<WebSocket[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(url, { ca: readFileSync(testPki().ca) });
          ws.once('open', () => resolve(ws));
          ws.once('error', reject);
        }),
    ),
  );
}

/** Each connection echoes `rounds` × `inflight` 32-byte messages, `inflight` at a time. */
async function echo(conns: WebSocket[], rounds: number, inflight: number): Promise<number> {
  const payload = Buffer.alloc(32, 7);
  let echoed = 0;
  await Promise.all(
    conns.map(
      (ws) =>
        new Promise<void>((resolve, reject) => {
          let sent = 0;
          let got = 0;
          const total = rounds * inflight;
          const onMessage = (data: Buffer): void => {
            if (data.length !== 32) reject(new Error(`echo of ${data.length} bytes`));
            got++;
            echoed++;
            if (got === total) {
              ws.off('message', onMessage);
              resolve();
            } else if (sent < total) {
              sent++;
              ws.send(payload);
            }
          };
          ws.on('message', onMessage);
          for (; sent < inflight; sent++) ws.send(payload);
        }),
    ),
  );
  return echoed;
}

t.test('a worker echoing for open connections allocates nothing per message', async (t) => {
  t.ok(existsSync(counter), `the allocation counter is built (${counter})`);
  const dir = mkdtempSync(path.join(tmpdir(), 'lapps-alloc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'lapps.json');
  const pki = testPki();
  const tlsPort = await freePort();
  writeFileSync(
    config,
    JSON.stringify({
      listeners: [
        { host: '127.0.0.1', port: 0 },
        { host: '127.0.0.1', port: tlsPort, tls: { cert: pki.serverCert, key: pki.serverKey } },
      ],
      workers: 1,
      services: [
        {
          name: 'echo',
          request_target: '/echo',
          source: path.join(repoRoot, 'services', 'echo', 'echo.lua'),
          instances: 1,
        },
        {
          name: 'echoc',
          request_target: '/echoc',
          kind: 'c',
          source: path.join(buildDir, 'libecho_c.so'),
        },
      ],
    }),
  );
  const base = path.join(dir, 'counts');
  const lapps = startLapps(t, ['start', '--config', config], {
    LD_PRELOAD: counter,
    LAPPS_ALLOC_COUNT: base,
  });
  const [, url] = await lapps.waitFor(/service echo \(raw\) at (ws:\/\/127\.0\.0\.1:\d+)\/echo\b/);
  const tlsUrl = `wss://127.0.0.1:${tlsPort}`;
  const pid = lapps.child.pid!;

  // Over wss, TLS 1.3 connections are on lapps's record layer once open.
  for (const target of [`${url}/echo`, `${url}/echoc`, `${tlsUrl}/echo`]) {
    const conns = await openAll(target, 100);
    const name = target.replace(/127\.0\.0\.1:\d+/, 'lapps'); // stable test names
    for (const inflight of [1, 16]) {
      const rounds = 100 / inflight;
      await echo(conns, rounds, inflight); // warm-up: buffers, pools, the Lua state's heap
      const before = await countsOf(base, pid, 'lapps-io-0');
      const messages = await echo(conns, rounds, inflight);
      const after = await countsOf(base, pid, 'lapps-io-0');
      t.equal(messages, 10_000, `${name}, ${inflight} in flight: all echoed`);
      const allocs = after.allocs - before.allocs;
      const frees = after.frees - before.frees;
      t.comment(`${name}, ${inflight} in flight: ${allocs} allocations, ${frees} frees`);
      // Measured: none. A loaded machine may make the worker keep more unparsed bytes
      // (backlogs) at once than it keeps spare buffers for, so a few are allowed; one per
      // message or per loop turn would be thousands (before the staging buffer: 3,300).
      t.ok(allocs <= 20, `${name}, ${inflight} in flight: ${allocs} allocations`);
      t.ok(frees <= 20, `${name}, ${inflight} in flight: ${frees} frees`);
    }
    await Promise.all(
      conns.map(
        (ws) => new Promise<void>((resolve) => (ws.once('close', () => resolve()), ws.close())),
      ),
    );
  }
  lapps.child.kill('SIGTERM');
  t.equal((await lapps.exited).code, 0, 'the server stops cleanly');
});
