/**
 * The log is bounded: a service printing in a loop while nobody reads stderr (a stuck pipe)
 * must not grow the server's memory, and a main thread that falls behind must not grow the
 * native log queue. Lines over the bounds are dropped, counted, and reported by one
 * "N log lines dropped" line once the log can be written again. The server keeps serving.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';
import WebSocket from 'ws';

import { normalizeConfig } from '../../lib/config/load.js';
import type { LogLevel } from '../../lib/config/types.js';
import { startServer } from '../../lib/server.js';
import { scaled } from '../helpers/raw-client.js';
import { repoRoot } from '../helpers/server.js';
import { until } from '../helpers/ws.js';

const bin = path.join(repoRoot, 'bin', 'lapps.js');
const flood = path.join(repoRoot, 'test', 'lua', 'services', 'runtime', 'log_flood.lua');
const MB = 1024 * 1024;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Opens `url`, sends one message and resolves with the echo. */
async function echo(url: string): Promise<string> {
  const ws = new WebSocket(url);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const answer = new Promise<string>((resolve) =>
      ws.once('message', (d: Buffer) => resolve(d.toString())),
    );
    ws.send('still here');
    const timeout = sleep(scaled(5000)).then(() => 'no answer');
    return await Promise.race([answer, timeout]);
  } finally {
    ws.terminate();
  }
}

t.test(
  'lapps start with stderr not read: RSS stays bounded, then "N log lines dropped"',
  async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lapps-log-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const config = path.join(dir, 'lapps.json');
    writeFileSync(
      config,
      JSON.stringify({
        listeners: [{ host: '127.0.0.1', port: 0 }],
        workers: 2,
        services: [{ name: 'flood', request_target: '/flood', source: flood, instances: 1 }],
      }),
    );
    const child = spawn(process.execPath, [bin, 'start', '--config', config], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    // Only the tail of the output is kept: the flood is hundreds of MB.
    let tail = '';
    let url = '';
    const dropped: string[] = [];
    const stderr = child.stderr!;
    stderr.setEncoding('utf8').on('data', (chunk: string) => {
      const text = tail + chunk;
      for (const m of text.matchAll(/^.*\d+ log lines? dropped.*$/gm)) dropped.push(m[0]);
      url ||= /service flood \(raw\) at (ws:\S+)/.exec(text)?.[1] ?? '';
      tail = text.slice(text.lastIndexOf('\n') + 1);
    });
    await until(() => url !== '', scaled(20_000), 'lapps started');

    // The pipe fills (64 KiB) and nobody reads it for a few seconds.
    stderr.pause();
    const before = rssOf(child.pid!);
    let peak = before;
    for (let i = 0; i < 8; ++i) {
      await sleep(500);
      peak = Math.max(peak, rssOf(child.pid!));
    }
    t.equal(await echo(url), 'still here', 'an echo is answered during the stall');
    peak = Math.max(peak, rssOf(child.pid!));
    t.comment(
      `RSS ${(before / MB).toFixed(0)} MB before the stall, peak ${(peak / MB).toFixed(0)} MB`,
    );
    // Unbounded, the stream buffer grows by tens of MB a second.
    t.ok(peak - before < 64 * MB, `RSS grew by ${((peak - before) / MB).toFixed(0)} MB (< 64 MB)`);

    stderr.resume();
    await until(() => dropped.length > 0, scaled(10_000), 'the "lines dropped" line');
    t.match(dropped[0], /WARN {2}\[log\] [1-9]\d* log lines? dropped/);
    t.equal(await echo(url), 'still here', 'the server still answers');
    child.kill('SIGKILL');
  },
);

t.test('a main thread that falls behind: the native log queue drops and counts', async (t) => {
  const config = normalizeConfig(
    {
      listeners: [{ host: '127.0.0.1', port: 0 }],
      workers: 1,
      services: [{ name: 'flood', request_target: '/flood', source: flood, instances: 1 }],
    },
    { file: '<test>', baseDir: repoRoot },
  );
  let logged = 0;
  const reported: [LogLevel, number][] = [];
  const server = await startServer(config, {
    logger: {
      error: () => ++logged,
      warn: () => ++logged,
      info: () => ++logged,
      debug: () => ++logged,
      dropped: (level, count) => reported.push([level, count]),
    },
  });
  t.teardown(() => server.stop());
  await until(() => logged > 0, scaled(5000), 'the flood reaches the log');
  const before = process.memoryUsage().rss;
  // Blocks the main thread (as a synchronous write to a stuck stderr would) for 2 s while
  // the worker goes on printing up to 200,000 lines a second (unbounded: +50 MB a second).
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2000);
  const grown = process.memoryUsage().rss - before;
  t.ok(grown < 24 * MB, `RSS grew by ${(grown / MB).toFixed(0)} MB while blocked (< 24 MB)`);
  await until(() => reported.length > 0, scaled(5000), 'drops reported to the logger');
  t.equal(reported[0]?.[0], 'info', 'print() lines are info');
  const total = reported.reduce((n, [, c]) => n + c, 0);
  t.ok(total > 0, `${total} lines reported dropped`);
  t.ok(server.counters().log_lines_dropped >= total, 'counted in log_lines_dropped');
  t.equal(await echo(server.urls.get('flood')!), 'still here', 'the server still answers');
});
