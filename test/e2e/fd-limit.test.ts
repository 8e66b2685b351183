/**
 * At the descriptor limit accept() fails every time the listener is retried (each 100 ms).
 * The warning is rate-limited: one line at once, then one line per 10 s with the count,
 * not ten lines a second per worker. The server serves again once descriptors are free.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

import t from 'tap';
import WebSocket from 'ws';

import { scaled } from '../helpers/raw-client.js';
import { repoRoot } from '../helpers/server.js';
import { until } from '../helpers/ws.js';

const bin = path.join(repoRoot, 'bin', 'lapps.js');

t.test('accept failing at RLIMIT_NOFILE: few warning lines, with counts; recovers', async (t) => {
  // Node itself holds a few dozen descriptors; 80 leaves room for a few connections only.
  const child = spawn(
    'prlimit',
    ['--nofile=80:80', process.execPath, bin, 'start', '--port', '0', '--workers', '1'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  await until(() => /lapps \S+ started/.test(err), scaled(20_000), 'lapps started');
  const url = /service echo \(raw\) at (ws:\S+)/.exec(err)![1]!;
  const port = Number(new URL(url).port);

  const sockets: net.Socket[] = [];
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  for (let i = 0; i < 120; ++i) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    sockets.push(s);
  }
  const warnings = (): string[] => err.split('\n').filter((l) => /accept failed/.test(l));
  await until(() => warnings().length > 0, scaled(5000), 'the first warning');
  const first = Date.now();
  // Accepts are retried every 100 ms: unlimited, that is ~100 lines in the next 10 s.
  await until(() => /repeated \d+ times/.test(err), scaled(10_000) + 2000, 'the count line');
  const lines = warnings();
  t.comment(lines.join('\n'));
  t.ok(Date.now() - first >= 9000, 'one interval later');
  t.equal(lines.length, 2, 'the first line and one with the count');
  t.match(lines[0], /WARN {2}\[worker 0\] accept failed: Too many open files; pausing accepts$/);
  const repeats = Number(/\(repeated (\d+) times in the last 10 s\)$/.exec(lines[1]!)?.[1]);
  t.ok(repeats >= 20, `${repeats} repeats counted`);

  // Descriptors come free: the server accepts and serves again.
  sockets.forEach((s) => s.destroy());
  const ws = new WebSocket(url);
  const echoed = await new Promise<string>((resolve) => {
    ws.on('open', () => ws.send('back'));
    ws.on('message', (d: Buffer) => resolve(d.toString()));
    ws.on('error', (e) => resolve(String(e)));
    setTimeout(() => resolve('timeout'), scaled(5000));
  });
  ws.terminate();
  t.equal(echoed, 'back', 'echo after recovery');
  child.kill('SIGKILL');
});

t.test('no descriptor left for a worker event loop: the start fails naming it', async (t) => {
  // 80 descriptors: each worker's loop takes two (epoll, eventfd); 40 workers cannot all
  // have theirs.
  const child = spawn(
    'prlimit',
    ['--nofile=80:80', process.execPath, bin, 'start', '--port', '0', '--workers', '40'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 1, 'lapps start exits with 1');
  t.match(err, /cannot start: worker \d+: cannot create its event loop: Too many open files/);
});
