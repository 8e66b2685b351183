/**
 * The LAppS home in examples/lapps-home, run unmodified by `lapps start --lapps-home` as a
 * LAppS user would: only the port (and cws_bench's auto_start and URL, which follow it) are
 * changed in a temporary copy. Checks the warnings for the LAppS keys lapps has no use for,
 * the echo service, the broadcasts a console client subscribes to, the mqr queue, the cws
 * client benchmark, and a clean SIGTERM stop of every standalone service. Needs dist/ and
 * the built addon (npm test builds both first).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

import { delay, scaled } from '../helpers/raw-client.js';
import { repoRoot } from '../helpers/server.js';
import { openWs } from '../helpers/ws.js';

const bin = path.join(repoRoot, 'bin', 'lapps.js');
const exampleHome = path.join(repoRoot, 'examples', 'lapps-home');

/** The LAppS keys of the example that lapps accepts and ignores, one warning each. */
const IGNORED_KEYS = [
  'ws.json: /listeners',
  'ws.json: /connection_weight',
  'ws.json: /lapps_config_auto_save',
  'ws.json: /workers/max_poll_events',
  'ws.json: /workers/max_poll_wait_ms',
  'ws.json: /workers/max_inbounds_skip',
  'ws.json: /workers/input_buffer_size',
  'lapps.json: /directories/deploy',
  'lapps.json: /directories/tmp',
];

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Replaces `from` (which must occur exactly once) in a file. */
function replaceOnce(file: string, from: string, to: string): void {
  const text = readFileSync(file, 'utf8');
  if (text.split(from).length !== 2) {
    throw new Error(`${file}: "${from}" is not there exactly once`);
  }
  writeFileSync(file, text.replace(from, to));
}

/** Copies the example home to a temporary directory, serving on `port`, cws_bench on. */
function exampleCopy(test: Pick<typeof t, 'teardown'>, port: number): string {
  const home = mkdtempSync(path.join(os.tmpdir(), 'lapps-examples-'));
  test.teardown(() => rmSync(home, { recursive: true, force: true }));
  cpSync(exampleHome, home, { recursive: true });
  const wsJson = path.join(home, 'etc', 'conf', 'ws.json');
  const oldPort = (JSON.parse(readFileSync(wsJson, 'utf8')) as { port: number }).port;
  replaceOnce(wsJson, `"port": ${oldPort}`, `"port": ${port}`);
  replaceOnce(
    path.join(home, 'apps', 'cws_bench', 'cws_bench.lua'),
    `127.0.0.1:${oldPort}/`,
    `127.0.0.1:${port}/`,
  );
  const lappsJson = path.join(home, 'etc', 'conf', 'lapps.json');
  const services = JSON.parse(readFileSync(lappsJson, 'utf8')) as {
    services: Record<string, { auto_start?: boolean }>;
  };
  services.services.cws_bench!.auto_start = true;
  writeFileSync(lappsJson, JSON.stringify(services, null, 2));
  return home;
}

interface Lapps {
  child: ChildProcess;
  /** Everything written to stderr (the log) so far. */
  log(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startLapps(test: Pick<typeof t, 'teardown'>, args: string[]): Lapps {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  test.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, log: () => log, exited };
}

/**
 * Polls `cond` every 10 ms until it returns something other than undefined; rejects with
 * the log when lapps exits first or `ms` passes.
 */
async function waitFor<T>(
  lapps: Lapps,
  what: string,
  cond: (log: string) => T | undefined,
  ms = scaled(5000),
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = cond(lapps.log());
    if (v !== undefined) return v;
    if (lapps.child.exitCode !== null || lapps.child.signalCode !== null) {
      throw new Error(`lapps exited before ${what}; log:\n${lapps.log()}`);
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; log:\n${lapps.log()}`);
    await delay(10);
  }
}

/** Decodes the CBOR subset LAppS OONs use: maps, arrays, integers, strings, floats. */
function decodeCbor(buf: Buffer): unknown {
  let at = 0;
  const item = (): unknown => {
    const first = buf[at++]!;
    const major = first >> 5;
    const info = first & 0x1f;
    if (major === 7) {
      if (info === 26 || info === 27) {
        const v = info === 26 ? buf.readFloatBE(at) : buf.readDoubleBE(at);
        at += info === 26 ? 4 : 8;
        return v;
      }
      if (info >= 20 && info <= 22) return [false, true, null][info - 20];
      throw new Error(`unsupported CBOR head 0x${first.toString(16)}`);
    }
    let n: number;
    if (info < 24) n = info;
    else if (info === 24) n = buf.readUInt8(at);
    else if (info === 25) n = buf.readUInt16BE(at);
    else if (info === 26) n = buf.readUInt32BE(at);
    else if (info === 27) n = Number(buf.readBigUInt64BE(at));
    else throw new Error(`unsupported CBOR head 0x${first.toString(16)}`);
    at += info < 24 ? 0 : 1 << (info - 24);
    switch (major) {
      case 0:
        return n;
      case 1:
        return -1 - n;
      case 2:
      case 3: {
        const bytes = buf.subarray(at, (at += n));
        return major === 2 ? bytes : bytes.toString('utf8');
      }
      case 4:
        return Array.from({ length: n }, item);
      case 5: {
        const map: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) map[String(item())] = item();
        return map;
      }
      default:
        throw new Error(`unsupported CBOR major type ${major}`);
    }
  };
  const v = item();
  if (at !== buf.length) throw new Error(`${buf.length - at} bytes after the CBOR item`);
  return v;
}

t.test('config convert prints a lapps config that lapps check accepts', async (t) => {
  const convert = spawnSync(process.execPath, [bin, 'config', 'convert', exampleHome], {
    encoding: 'utf8',
  });
  t.equal(convert.status, 0, convert.stderr);
  for (const key of IGNORED_KEYS) {
    t.match(convert.stderr, `warning: ${exampleHome}/etc/conf/${key}: ignored`);
  }
  const config = JSON.parse(convert.stdout) as {
    listeners: { host: string; port: number }[];
    services: { name: string; standalone: boolean; source: string }[];
  };
  t.same(config.listeners, [{ host: '127.0.0.1', port: 5083 }]);
  t.same(
    config.services.map((s) => [s.name, s.standalone]),
    [
      ['echo', false],
      ['echo_lapps', false],
      ['time_broadcast', true],
      ['broadcast_blob', true],
      ['console', false],
      ['mqr_sender', true],
      ['mqr_receiver', true],
      ['cws_bench', true],
    ],
    'every service, "internal" read as "standalone"',
  );
  t.equal(
    config.services.find((s) => s.name === 'echo')?.source,
    path.join(exampleHome, 'apps', 'echo', 'echo.lua'),
  );

  const dir = mkdtempSync(path.join(os.tmpdir(), 'lapps-convert-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'lapps.json');
  writeFileSync(file, convert.stdout);
  const check = spawnSync(process.execPath, [bin, 'check', '--config', file], { encoding: 'utf8' });
  t.equal(check.status, 0, check.stderr);
  t.match(check.stdout + check.stderr, /ok: 8 services/);
});

t.test('the example services run unmodified; SIGTERM stops them all', async (t) => {
  const port = await freePort();
  const home = exampleCopy(t, port);
  const lapps = startLapps(t, ['start', '--lapps-home', home]);
  await waitFor(lapps, 'startup', (log) => /lapps \S+ started: 2 workers\n/.exec(log) ?? undefined);

  // One warning per key lapps has no use for, and nothing else: the server runs.
  const all = [...lapps.log().matchAll(/ WARN {2}(.*)\n/g)].map((m) => m[1]!);
  // Plus one note that, as in LAppS, no Origin is checked (docs/security.md).
  const origin = all.filter((w) => w.includes('LAppS checked no Origin'));
  t.equal(origin.length, 1, 'the Origin note, once');
  const warned = all.filter((w) => !origin.includes(w));
  t.same(
    warned.map(
      (w) => /\/etc\/conf\/(\S+: \S+): ignored: lapps has no use for it/.exec(w)?.[1] ?? w,
    ),
    IGNORED_KEYS,
    'one warning for each LAppS key lapps has no use for',
  );

  await t.test('echo answers text and binary', async (t) => {
    const ws = await openWs(`ws://127.0.0.1:${port}/echo`);
    t.teardown(() => ws.terminate());
    const replies: [Buffer, boolean][] = [];
    ws.on('message', (data: Buffer, isBinary: boolean) => replies.push([data, isBinary]));
    const blob = Buffer.from([0, 1, 2, 255]);
    ws.send('hello lapps');
    ws.send(blob);
    await waitFor(lapps, 'echo replies', () => (replies.length >= 2 ? true : undefined));
    t.same(replies, [
      [Buffer.from('hello lapps'), false],
      [blob, true],
    ]);
  });

  await t.test('a console client gets the time OON (1000) and the blob (1001)', async (t) => {
    const ws = await openWs(`ws://127.0.0.1:${port}/console`);
    t.teardown(() => ws.terminate());
    const messages: [Buffer, boolean][] = [];
    ws.on('message', (data: Buffer, isBinary: boolean) => messages.push([data, isBinary]));
    ws.send('subscribe');
    const subscribedAt = Date.now();
    const find = (pred: (b: Buffer) => boolean): Buffer | undefined =>
      messages.find(([b, bin]) => bin && pred(b))?.[0];
    const isBlob = (b: Buffer): boolean => b.length === 8192 && b[0] === 0 && b[7] === 7;
    const [oon, blob] = await waitFor(
      lapps,
      '"subscribed" and both broadcasts',
      () => {
        const oon = find((b) => !isBlob(b));
        const blob = find(isBlob);
        const answered = messages.some(([b, bin]) => !bin && b.toString() === 'subscribed');
        return answered && oon && blob ? [oon, blob] : undefined;
      },
      scaled(2500),
    );
    const decoded = decodeCbor(oon) as { cid: number; message: number[] };
    t.same(Object.keys(decoded).sort(), ['cid', 'message']);
    t.equal(decoded.cid, 1000);
    t.equal(decoded.message.length, 1);
    t.ok(
      Math.abs(decoded.message[0]! - subscribedAt) < 5000,
      `message[1] is time.now() in ms (${decoded.message[0]} vs ${subscribedAt})`,
    );
    t.ok(blob.equals(Buffer.from('\0\x01\x02\x03\x04\x05\x06\x07'.repeat(1024), 'latin1')));
  });

  await t.test('the mqr_receiver instances count what mqr_sender posts', async (t) => {
    const counts = await waitFor(lapps, 'two reports from each receiver', (log) => {
      const seen: Record<string, number[]> = {};
      for (const m of log.matchAll(/\[service (mqr_receiver#\d)\] \1 received (\d+)\n/g)) {
        (seen[m[1]!] ??= []).push(Number(m[2]));
      }
      const both = ['mqr_receiver#0', 'mqr_receiver#1'].every((i) => (seen[i]?.length ?? 0) >= 2);
      return both ? seen : undefined;
    });
    for (const [instance, n] of Object.entries(counts)) {
      t.ok(n[0]! > 0, `${instance} received some`);
      t.ok(
        n.every((v, i) => i === 0 || v > n[i - 1]!),
        `${instance}: numbers grow (${n.join(', ')})`,
      );
    }
  });

  await t.test('cws_bench reports messages per second from its 100 clients', async (t) => {
    const rate = await waitFor(lapps, 'a cws_bench rate above 0', (log) => {
      for (const m of log.matchAll(/\[service cws_bench#0\] cws_bench#0: (\d+) messages\/s\n/g)) {
        if (Number(m[1]) > 0) return Number(m[1]);
      }
      return undefined;
    });
    t.ok(rate > 0, `${rate} messages/s`);
  });

  lapps.child.kill('SIGTERM');
  t.same(await lapps.exited, { code: 0, signal: null }, 'exit code 0');
  const log = lapps.log();
  t.match(log, /stopping \(SIGTERM\)/);
  for (const line of [
    '[service time_broadcast#0] time_broadcast: stopped',
    '[service broadcast_blob#0] broadcast_blob: stopped',
    '[service mqr_sender#0] mqr_sender#0 stopped after posting ',
    '[service mqr_receiver#0] mqr_receiver#0 stopped after receiving ',
    '[service mqr_receiver#1] mqr_receiver#1 stopped after receiving ',
    '[service cws_bench#0] cws_bench#0 stopped',
  ]) {
    t.ok(log.includes(line), `run() returned: ${line}`);
  }
  t.notMatch(log, / ERROR /, 'no error in the log');
});
