#!/usr/bin/env node
/**
 * `npm run bench`: lapps side by side with other echo servers, one run, one table.
 *
 *   npm run bench                      every scenario, every peer (~10 minutes)
 *   npm run bench -- --quick           shorter runs, 10k idle only (< 3 minutes)
 *   npm run bench -- --peers lapps,tcp only these peers
 *   npm run bench -- --scenarios closed-100x32,pipelined-100x32x16
 *   npm run bench -- --callgrind       also count instructions per echoed message
 *   npm run bench -- --peers lapps-tls,websocketpp-tls   wss: the same scenarios over TLS
 *   npm run bench -- --fresh 20        closed-100x32 on 20 fresh processes of lapps, lapps-c
 *                                      and tcp (default 20 in a full run, 0 with --quick)
 *   npm run bench -- --scenarios mqr-example   the mqr group alone (lapps only, bench/mqr.mjs)
 *   npm run bench -- --scenarios fanout-1k-32,fanout-1k-rate200 --peers lapps,ws,tcp-fanout
 *   npm run bench -- --fanout-runs 5   each fan-out scenario on 5 fresh servers per peer
 *                                      (default 3): the median run is reported, all listed
 *
 * Every server runs pinned to core 0, the load generator to core 1 (taskset). Each
 * scenario gets a fresh server process so its peak RSS is its own. TLS peers (-tls) serve
 * wss:// with a self-signed localhost certificate made at start (`lapps cert dev`) and are
 * driven with `lapps-loadgen --tls` (a full handshake per connection). Fan-out scenarios
 * (fanout-*) run each peer's broadcast server instead of its echo (peers without one are
 * skipped, and fan-out-only peers skip the echo scenarios). Results go to
 * bench/results/<date>.json and an SVG chart beside it (both git-ignored).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { renderChart } from './chart.mjs';
import { fmt, table } from './format.mjs';
import { mqrScenarios, mqrTable, runMqr } from './mqr.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const benchBuild = path.join(root, 'build-bench');
const bin = (name) => path.join(benchBuild, 'bench', ...name.split('/'));

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    peers: { type: 'string' },
    scenarios: { type: 'string' },
    callgrind: { type: 'boolean', default: false },
    fresh: { type: 'string' },
    'fanout-runs': { type: 'string', default: '3' },
    'no-build': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]);
  process.exit(0);
}

const quick = opts.quick;
const duration = quick ? 2 : 5;
const warmup = quick ? 0.5 : 1;
const serverCore = '0';
const clientCore = os.availableParallelism() > 1 ? '1' : '0';

// --- prerequisites and build -------------------------------------------------------------

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function ensurePackages() {
  const missing = [];
  if (!existsSync('/usr/include/websocketpp/server.hpp')) missing.push('libwebsocketpp-dev');
  if (!existsSync('/usr/include/boost/beast.hpp')) missing.push('libboost-dev');
  if (!have('valgrind')) missing.push('valgrind');
  if (!have('taskset')) missing.push('util-linux');
  if (!have('cmake')) missing.push('cmake');
  if (missing.length === 0) return;
  if (process.getuid?.() === 0 && have('apt-get')) {
    console.log(`bench: installing ${missing.join(' ')}`);
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    const r = spawnSync(
      'apt-get',
      ['install', '-y', '-qq', '--no-install-recommends', ...missing],
      {
        stdio: 'inherit',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      },
    );
    if (r.status !== 0) fail(`apt-get install ${missing.join(' ')} failed`);
  } else {
    fail(`missing packages; run: sudo apt-get install -y ${missing.join(' ')}`);
  }
}

function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(1);
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed`);
}

function build() {
  ensurePackages();
  // The addon and dist/ as `npm install` builds them, then the bench tools.
  run(process.execPath, [path.join(root, 'scripts', 'build-native.mjs')]);
  run(process.execPath, [
    path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
    '-p',
    'tsconfig.json',
  ]);
  run(
    'cmake',
    [
      '-S',
      root,
      '-B',
      benchBuild,
      '-DCMAKE_BUILD_TYPE=Release',
      '-DLAPPS_BENCH=ON',
      '-DLAPPS_NATIVE_TESTS=OFF',
      '-Wno-dev',
      '--log-level=WARNING',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  run('cmake', ['--build', benchBuild, '-j', '2']);
}

// --- peers -------------------------------------------------------------------------------

/** A config serving the C echo module (services/echo-c, built with the addon) at /echo. */
function cEchoConfig() {
  const file = path.join(os.tmpdir(), 'lapps-bench-c-echo.json');
  const config = {
    listeners: [{ host: '127.0.0.1', port: 5083 }],
    services: [
      {
        name: 'echo',
        request_target: '/echo',
        kind: 'c',
        source: path.join(root, 'build', 'Release', 'libecho_c.so'),
      },
    ],
  };
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

/** The Lua echo with a trivial onConnect (reads one header, accepts). */
function onConnectEchoConfig() {
  const file = path.join(os.tmpdir(), 'lapps-bench-onconnect-echo.json');
  const config = {
    listeners: [{ host: '127.0.0.1', port: 5084 }],
    services: [
      {
        name: 'echo',
        request_target: '/echo',
        source: path.join(root, 'bench', 'peers', 'echo-onconnect.lua'),
      },
    ],
  };
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

/**
 * The lapps fan-out peers: the broadcast service at /fanout (RAW, or the LAppS protocol)
 * and the standalone publisher the "go"/"rate" commands reach through an mqr queue.
 */
function fanoutConfig(protocol) {
  const file = path.join(os.tmpdir(), `lapps-bench-fanout-${protocol}.json`);
  const peers = path.join(root, 'bench', 'peers');
  const name = protocol === 'lapps' ? 'fanout_lapps' : 'fanout';
  const config = {
    listeners: [{ host: '127.0.0.1', port: 5085 }],
    services: [
      {
        name: 'fanout_publisher',
        standalone: true,
        source: path.join(peers, 'fanout-publisher.lua'),
        preload: ['mqr', 'time'],
      },
      {
        name,
        request_target: '/fanout',
        protocol,
        source: path.join(peers, protocol === 'lapps' ? 'fanout-lapps.lua' : 'fanout.lua'),
        preload: ['mqr'],
        depends: ['fanout_publisher'],
      },
    ],
  };
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

let tlsFiles;
/**
 * The certificate TLS peers serve: `lapps cert dev` (EC P-256, self-signed, localhost) into
 * a temporary directory, made once per run and removed when the run ends.
 */
function devCertificate() {
  if (tlsFiles) return tlsFiles;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lapps-bench-tls-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  run(process.execPath, [path.join(root, 'bin', 'lapps.js'), 'cert', 'dev', '--out', dir], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  tlsFiles = { dir, cert: path.join(dir, 'localhost.crt'), key: path.join(dir, 'localhost.key') };
  return tlsFiles;
}

/** The bundled Lua echo at /echo on a wss:// listener: the default config plus `tls`. */
function tlsEchoConfig() {
  const { dir, cert, key } = devCertificate();
  const file = path.join(dir, 'lapps-tls-echo.json');
  const config = {
    listeners: [{ host: '127.0.0.1', port: 5443, tls: { cert, key } }],
    services: [
      {
        name: 'echo',
        request_target: '/echo',
        source: path.join(root, 'services', 'echo', 'echo.lua'),
      },
    ],
  };
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

/** `lapps start` on one worker, on `port`, with extra arguments (a config file). */
const lappsStart = (port, ...args) => [
  process.execPath,
  path.join(root, 'bin', 'lapps.js'),
  'start',
  ...args,
  '--port',
  String(port),
  '--workers',
  '1',
];

/**
 * Echo servers under test; all answer on /echo. `tls`: serves wss:// (the load generator
 * gets --tls, and "vs lapps" compares with lapps-tls). `fanout`: what runs instead in the
 * fan-out scenarios (a broadcast server at /fanout; `lapps`: the LAppS protocol);
 * `fanoutOnly`: the peer has no echo. See bench/peers/README.md, "Fan-out peers".
 */
const wsFanout = (port) => [
  process.execPath,
  path.join(root, 'bench', 'peers', 'ws-fanout.mjs'),
  String(port),
];
const allPeers = [
  {
    name: 'lapps',
    label: 'lapps (Lua echo)',
    cmd: (port) => lappsStart(port),
    ready: 'started',
    fanout: {
      label: 'lapps (Lua, bcast)',
      cmd: (port) => lappsStart(port, '--config', fanoutConfig('raw')),
    },
  },
  {
    name: 'lapps-protocol',
    label: 'lapps (LAppS protocol, CBOR OONs)',
    cmd: (port) => lappsStart(port, '--config', fanoutConfig('lapps')),
    ready: 'started',
    fanoutOnly: true,
    fanout: { lapps: true },
  },
  {
    name: 'lapps-tls',
    label: 'lapps (Lua echo) wss',
    cmd: (port) => lappsStart(port, '--config', tlsEchoConfig()),
    ready: 'started',
    tls: true,
  },
  {
    name: 'lapps-onconnect',
    label: 'lapps (Lua echo, trivial onConnect)',
    cmd: (port) => lappsStart(port, '--config', onConnectEchoConfig()),
    ready: 'started',
  },
  {
    name: 'lapps-c',
    label: 'lapps (C module echo)',
    cmd: (port) => lappsStart(port, '--config', cEchoConfig()),
    ready: 'started',
  },
  {
    name: 'ws',
    label: 'ws + bufferutil',
    cmd: (port) => [
      process.execPath,
      path.join(root, 'bench', 'peers', 'ws-echo.mjs'),
      String(port),
    ],
    ready: 'listening',
    fanout: { cmd: wsFanout },
  },
  {
    name: 'ws-plain',
    label: 'ws (no bufferutil)',
    cmd: (port) => [
      process.execPath,
      path.join(root, 'bench', 'peers', 'ws-echo.mjs'),
      String(port),
    ],
    env: { WS_NO_BUFFER_UTIL: '1' },
    ready: 'listening',
    fanout: { cmd: wsFanout },
  },
  {
    name: 'websocketpp',
    label: 'websocketpp',
    cmd: (port) => [bin('peers/websocketpp-echo'), String(port)],
    ready: 'listening',
    fanout: { cmd: (port) => [bin('peers/websocketpp-fanout'), String(port)] },
  },
  {
    name: 'websocketpp-tls',
    label: 'websocketpp wss',
    cmd: (port) => {
      const { cert, key } = devCertificate();
      return [bin('peers/websocketpp-tls-echo'), String(port), cert, key];
    },
    ready: 'listening',
    tls: true,
  },
  {
    name: 'beast',
    label: 'Boost.Beast',
    cmd: (port) => [bin('peers/beast-echo'), String(port)],
    ready: 'listening',
  },
  {
    name: 'tcp',
    label: 'raw TCP echo (ceiling)',
    cmd: (port) => [bin('peers/tcp-echo'), String(port)],
    ready: 'listening',
    raw: true,
  },
  {
    name: 'tcp-fanout',
    label: 'raw TCP fan-out (ceiling)',
    cmd: (port) => [bin('peers/tcp-fanout'), String(port)],
    ready: 'listening',
    raw: true,
    fanoutOnly: true,
    fanout: {},
  },
];

const allScenarios = [
  {
    name: 'closed-100x32',
    label: 'closed loop 100 x 32 B',
    args: ['--connections', '100', '--size', '32', '--inflight', '1'],
  },
  {
    name: 'closed-100x1k',
    label: 'closed loop 100 x 1 KiB',
    args: ['--connections', '100', '--size', '1024', '--inflight', '1'],
  },
  {
    name: 'closed-1000x32',
    label: 'closed loop 1000 x 32 B',
    args: ['--connections', '1000', '--size', '32', '--inflight', '1'],
  },
  {
    name: 'closed-10x64k',
    label: 'closed loop 10 x 64 KiB',
    args: ['--connections', '10', '--size', '65536', '--inflight', '1'],
  },
  {
    name: 'pipelined-100x32x16',
    label: 'pipelined 100 x 32 B x 16',
    args: ['--connections', '100', '--size', '32', '--inflight', '16'],
  },
  {
    name: 'handshakes',
    label: 'handshakes/s (10,000)',
    mode: 'ramp',
    args: ['--connections', '10000', '--concurrency', '100'],
  },
  {
    // The same, five times longer: CPU µs per handshake to a tenth of a µs (the process's
    // CPU time is read in 10 ms ticks), for comparing handshake paths (onConnect or not).
    name: 'handshakes-50k',
    label: 'handshakes/s (50,000)',
    mode: 'ramp',
    args: ['--connections', '50000', '--concurrency', '100'],
    full: true,
  },
  { name: 'idle-10k', label: 'idle 10,000 connections', mode: 'idle', connections: 10000 },
  {
    // As many as the descriptor limit of a default machine allows (a hard limit of 20,000:
    // the server needs a few for itself), for bytes per connection at scale.
    name: 'idle-20k',
    label: 'idle 19,900 connections',
    mode: 'idle',
    connections: 19900,
  },
  {
    name: 'idle-50k',
    label: 'idle 50,000 connections',
    mode: 'idle',
    connections: 50000,
    full: true,
  },
  // Fan-out: N subscribers on one channel, one publisher (lapps-loadgen --mode fanout).
  // Flat out: at most `--window` (32) publishes in flight; "-server": the server's own
  // publisher, paced by credits; rate200: 200 publishes/s, for latency.
  ...[
    ['1k', 1000, '32', 32],
    ['1k', 1000, '1k', 1024],
    ['10k', 10000, '32', 32],
    ['10k', 10000, '1k', 1024],
  ].flatMap(([n, subscribers, s, size]) =>
    ['client', 'server'].map((publisher) => ({
      name: `fanout-${n}-${s}${publisher === 'server' ? '-server' : ''}`,
      label: `fan-out ${n} x ${s === '1k' ? '1 KiB' : '32 B'}${publisher === 'server' ? ', server publisher' : ''}`,
      mode: 'fanout',
      args: [
        '--connections',
        String(subscribers),
        '--size',
        String(size),
        '--publisher',
        publisher,
      ],
    })),
  ),
  {
    name: 'fanout-1k-rate200',
    label: 'fan-out 1k x 32 B at 200 publishes/s',
    mode: 'fanout',
    args: ['--connections', '1000', '--size', '32', '--rate', '200'],
  },
];

function pick(list, csv) {
  if (!csv) return list;
  const names = csv.split(',');
  const unknown = names.filter((n) => !list.some((x) => x.name === n));
  if (unknown.length)
    fail(`unknown: ${unknown.join(', ')} (known: ${list.map((x) => x.name).join(', ')})`);
  return list.filter((x) => names.includes(x.name));
}

const peers = pick(allPeers, opts.peers);
// The mqr group (bench/mqr.mjs) runs lapps alone: it is in every run that includes lapps.
const picked = pick([...allScenarios, ...mqrScenarios], opts.scenarios);
const scenarios = picked.filter((s) => allScenarios.includes(s) && !(quick && s.full));
const mqrPicked = peers.some((p) => p.name === 'lapps')
  ? picked.filter((s) => mqrScenarios.includes(s))
  : [];

// --- process helpers ---------------------------------------------------------------------

const fdLimit = 1048576;
const canLiftFdLimit =
  spawnSync('prlimit', [`--nofile=${fdLimit}:${fdLimit}`, 'true'], { stdio: 'ignore' }).status ===
  0;
/** The descriptor limit peers run with: each connection held costs one. */
function peerFdLimit() {
  if (canLiftFdLimit) return fdLimit;
  const r = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' });
  return Number(r.stdout.trim()) || 1024;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Starts a peer pinned to the server core; resolves once it says it is ready. */
async function startPeer(peer) {
  const port = await freePort();
  const [cmd, ...args] = peer.cmd(port);
  if (!existsSync(cmd)) throw new Error(`${peer.name}: ${cmd} not built`);
  // 50,000 idle connections need that many descriptors: where the limit can be lifted
  // (root with CAP_SYS_RESOURCE), lift it for every peer alike.
  const launcher = canLiftFdLimit
    ? ['prlimit', `--nofile=${fdLimit}:${fdLimit}`, 'taskset', '-c', serverCore]
    : ['taskset', '-c', serverCore];
  const child = spawn(launcher[0], [...launcher.slice(1), cmd, ...args], {
    cwd: root,
    env: { ...process.env, ...peer.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${peer.name}: not ready after 15 s:\n${out}`)),
      15000,
    );
    const onData = (d) => {
      out += d.toString();
      if (out.includes(peer.ready)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${peer.name} exited with ${code}:\n${out}`));
    });
  });
  return { child, port, pid: child.pid };
}

async function stopPeer(p) {
  // Gone already (exited, or killed by a signal: then exitCode stays null and no 'exit'
  // event would come again, so waiting for one would end the run silently).
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** prlimit and taskset exec the server, so the child pid is the server's. */
function procStatus(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

/** CPU seconds (user + system) the process has used, all threads. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / 100; // USER_HZ is 100 on Linux
}

/** Runs the load generator pinned to the client core(s); resolves with its final JSON. */
function loadgen(args, { onLine, cores = clientCore } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', cores, bin('lapps-loadgen'), ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d.toString();
      let nl;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (!line.trim()) continue;
        const obj = JSON.parse(line);
        if (obj.event) onLine?.(obj, child);
        else resolve(obj);
      }
    });
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`loadgen ${args.join(' ')} exited with ${code}`));
    });
  });
}

// --- scenarios ---------------------------------------------------------------------------

/**
 * Fan-out: the load generator gets every core but the server's (one thread each), and
 * says when its measured window opens and closes, so the server's CPU time is read over
 * exactly that window.
 */
const fanoutCores =
  os.availableParallelism() > 2 ? `1-${os.availableParallelism() - 1}` : clientCore;
const fanoutThreads = Math.max(1, os.availableParallelism() - 1);
const fanoutRuns = Math.max(1, Number(opts['fanout-runs']) || 1);

/**
 * A fan-out scenario on `fanoutRuns` fresh servers, one after the other: one run's figure
 * moves by several percent (the load generator's core is often the limit), so the median
 * run is the result (by deliveries/s; at a fixed rate, by p99 latency), and every run's
 * figures are kept beside it (`runs`).
 */
async function runFanout(peer, scenario) {
  const results = [];
  for (let i = 0; i < fanoutRuns; i++) results.push(await runFanoutOnce(peer, scenario));
  const fixedRate = scenario.args.includes('--rate');
  const key = (r) => (fixedRate ? (r.latency_us?.p99 ?? 0) : (r.deliveries_per_sec ?? 0));
  const sorted = [...results].sort((a, b) => key(a) - key(b));
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  return {
    ...median,
    runs: results.map((r) => ({
      deliveries_per_sec: r.deliveries_per_sec,
      p99_us: r.latency_us?.p99,
      cpuUsPerDelivery: r.cpuUsPerDelivery,
      client_cpu_pct: r.client_cpu_pct,
    })),
  };
}

async function runFanoutOnce(peer, scenario) {
  const server = await startPeer({ ...peer, ...peer.fanout });
  try {
    const cpu = {};
    const result = await loadgen(
      [
        ...['--host', '127.0.0.1', '--port', String(server.port), '--path', '/fanout'],
        ...['--mode', 'fanout', ...scenario.args, '--threads', String(fanoutThreads)],
        ...['--duration', String(duration), '--warmup', String(warmup)],
        ...(peer.raw ? ['--raw'] : []),
        ...(peer.fanout.lapps ? ['--lapps'] : []),
      ],
      {
        cores: fanoutCores,
        onLine: (obj) => {
          if (obj.event === 'window') cpu[obj.phase] = cpuSeconds(server.pid);
        },
      },
    );
    const serverCpu = cpu.end !== undefined && cpu.start !== undefined ? cpu.end - cpu.start : null;
    return {
      ...result,
      cpuUsPerDelivery:
        serverCpu !== null && result.deliveries ? (serverCpu * 1e6) / result.deliveries : null,
      peakRssKb: procStatus(server.pid).hwmKb,
    };
  } finally {
    await stopPeer(server);
  }
}

/** How long an idle server is left to settle before its RSS is read (its memory tick is 1 s). */
const kIdleSettleMs = 3000;

async function runScenario(peer, scenario) {
  if (scenario.mode === 'fanout') {
    if (!peer.fanout) return { skipped: 'no broadcast server (echo peer)' };
    return runFanout(peer, scenario);
  }
  if (peer.fanoutOnly) return { skipped: 'fan-out peer' };
  // The raw TCP echo speaks no WebSocket: it is a ceiling for echo throughput only.
  if (peer.raw && scenario.mode) return { skipped: 'no WebSocket handshake (echo ceiling only)' };
  const server = await startPeer(peer);
  try {
    const base = [
      ...['--host', '127.0.0.1', '--port', String(server.port), '--path', '/echo'],
      ...(peer.tls ? ['--tls'] : []),
    ];
    if (scenario.mode === 'idle') {
      // Two halves, opened one after the other, each held by its own load generator. The
      // server's RSS is read once it has settled (kIdleSettleMs: its quiet-time trim has
      // run) after each half: the total per connection is against the RSS before any
      // connection, the marginal one is what the second half added, so it leaves out
      // whatever the server allocated once (at start, or for its first connections).
      const before = procStatus(server.pid).rssKb;
      const idleArgs = (n) => [
        ...base,
        ...['--mode', 'idle', '--connections', String(n)],
        ...['--sources', '127.0.0.1,127.0.0.2,127.0.0.3', '--hold', '120'],
      ];
      const first = Math.floor(scenario.connections / 2);
      const settle = () => new Promise((resolve) => setTimeout(resolve, kIdleSettleMs));
      let half;
      let held;
      let second;
      const results = await new Promise((resolve, reject) => {
        const a = loadgen(idleArgs(first), {
          onLine: (_obj, childA) => {
            settle()
              .then(() => {
                half = procStatus(server.pid);
                second = loadgen(idleArgs(scenario.connections - first), {
                  onLine: (_o, childB) => {
                    settle().then(() => {
                      held = procStatus(server.pid);
                      childA.stdin.end();
                      childB.stdin.end();
                    });
                  },
                });
                return Promise.all([a, second]);
              })
              .then(resolve, reject);
          },
        });
        a.catch(reject);
      });
      const [ra, rb] = results;
      const opened = (ra.opened ?? 0) + (rb.opened ?? 0);
      const rss = held ?? procStatus(server.pid);
      const limit = peerFdLimit();
      return {
        note:
          scenario.connections >= limit
            ? `descriptor hard limit ${limit} on this machine: at most ~${limit} connections per process`
            : undefined,
        opened,
        errors: (ra.errors ?? 0) + (rb.errors ?? 0),
        tls: ra.tls,
        rssKb: rss.rssKb,
        baselineRssKb: before,
        halfRssKb: half?.rssKb,
        bytesPerConnection: opened ? ((rss.rssKb - before) * 1024) / opened : null,
        marginalBytesPerConnection:
          rb.opened && half ? ((rss.rssKb - half.rssKb) * 1024) / rb.opened : null,
        peakRssKb: rss.hwmKb,
      };
    }
    const cpu0 = cpuSeconds(server.pid);
    const args =
      scenario.mode === 'ramp'
        ? [...base, '--mode', 'ramp', ...scenario.args]
        : [
            ...base,
            '--mode',
            'echo',
            ...scenario.args,
            '--duration',
            String(duration),
            '--warmup',
            String(warmup),
            ...(peer.raw ? ['--raw'] : []),
          ];
    const result = await loadgen(args);
    const cpu = cpuSeconds(server.pid) - cpu0;
    const status = procStatus(server.pid);
    const total = result.messages_total ?? result.handshakes ?? result.messages;
    return {
      ...result,
      cpuUsPerMessage: total ? (cpu * 1e6) / total : null,
      peakRssKb: status.hwmKb,
    };
  } finally {
    await stopPeer(server);
  }
}

function micro() {
  const out = {};
  for (const [key, name] of [
    ['parser', 'micro/lapps-bench-parser'],
    ['encoder', 'micro/lapps-bench-encoder'],
  ]) {
    const r = spawnSync('taskset', ['-c', clientCore, bin(name), '--json'], { encoding: 'utf8' });
    if (r.status !== 0) {
      console.error(`bench: ${name} failed: ${r.stderr}`);
      continue;
    }
    out[key] = JSON.parse(r.stdout);
  }
  return out;
}

/**
 * The loads callgrind counts under: closed (each connection waits for its echo) and
 * pipelined (16 messages in flight per connection, so one read carries several).
 */
const callgrindLoads = [
  { name: 'closed', inflight: 1, messages: 20000 },
  { name: 'pipelined', inflight: 16, messages: 80000 },
];

/**
 * Instructions the lapps worker thread spends per echoed message: callgrind counts only
 * inside Worker::run (the data plane), over a fixed number of messages, so the figure
 * does not depend on machine noise.
 */
async function callgrind({ inflight, messages }) {
  const port = await freePort();
  const outDir = path.join(root, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const outFile = path.join(outDir, `callgrind.${Date.now()}.out`);
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      `--callgrind-out-file=${outFile}`,
      '--toggle-collect=lapps::Worker::run()',
      process.execPath,
      path.join(root, 'bin', 'lapps.js'),
      'start',
      '--port',
      String(port),
      '--workers',
      '1',
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`callgrind: server not ready:\n${log}`)),
      120000,
    );
    const onData = (d) => {
      log += d.toString();
      if (log.includes('started')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
  });
  const result = await loadgen([
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--path',
    '/echo',
    '--mode',
    'echo',
    '--connections',
    '10',
    '--size',
    '32',
    '--inflight',
    String(inflight),
    '--count',
    String(messages),
  ]);
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  const dump = readFileSync(outFile, 'utf8');
  const totals = /^totals:\s+(\d+)/m.exec(dump) ?? /^summary:\s+(\d+)/m.exec(dump);
  const instructions = Number(totals?.[1] ?? 0);
  const echoed = result.messages_total ?? result.messages;
  return {
    messages: echoed,
    instructions,
    instructionsPerMessage: instructions / echoed,
    file: outFile,
  };
}

// --- report ------------------------------------------------------------------------------

const fanoutColumns = [
  'deliveries/s',
  'runs (min-max)',
  'vs tcp-fanout',
  'vs ws',
  'p50 µs',
  'p99 µs',
  'p99 vs tcp',
  'CPU µs/delivery',
  'drops',
  'errors',
];

const fixedRate = (scenario) => scenario.args?.includes('--rate');

/** The range of a scenario's runs ("-" for one run); at a fixed rate, of p99 (µs). */
function spread(values) {
  if (!values || values.length < 2) return '-';
  return `${fmt(Math.min(...values))}-${fmt(Math.max(...values))}`;
}

function report(results) {
  const lines = [];
  for (const scenario of scenarios) {
    const rows = [
      [
        scenario.label,
        ...(scenario.mode === 'idle'
          ? ['opened', 'server RSS', 'bytes/conn', 'marginal B/conn', 'errors']
          : scenario.mode === 'ramp'
            ? ['handshakes/s', 'CPU µs/hs', 'peak RSS', 'errors']
            : [
                'msg/s',
                'vs lapps',
                'p50 µs',
                'p99 µs',
                'p99.9 µs',
                'CPU µs/msg',
                'peak RSS',
                'errors',
              ]),
      ],
    ];
    // Fan-out rows have columns of their own: ratios to the raw TCP ceiling and to ws.
    if (scenario.mode === 'fanout') rows[0] = [scenario.label, ...fanoutColumns];
    // TLS peers are compared with lapps over TLS, the others with plain lapps.
    const lappsRate = (peer) =>
      results[peer.tls ? 'lapps-tls' : 'lapps']?.[scenario.name]?.msgs_per_sec;
    for (const peer of peers) {
      const r = results[peer.name]?.[scenario.name];
      if (!r) continue;
      if (r.skipped) continue;
      if (r.error) {
        rows.push([peer.label, `failed: ${r.error.split('\n')[0]}`]);
        continue;
      }
      if (scenario.mode === 'fanout') {
        const ref = (name) => results[name]?.[scenario.name];
        const ratio = (a, b) => (a && b ? `${fmt(a / b, 2)}x` : '-');
        rows.push([
          peer.fanout?.label ?? peer.label,
          fmt(r.deliveries_per_sec),
          spread(r.runs?.map((x) => (fixedRate(scenario) ? x.p99_us : x.deliveries_per_sec))),
          ratio(r.deliveries_per_sec, ref('tcp-fanout')?.deliveries_per_sec),
          ratio(r.deliveries_per_sec, ref('ws')?.deliveries_per_sec),
          fmt(r.latency_us?.p50),
          fmt(r.latency_us?.p99),
          ratio(r.latency_us?.p99, ref('tcp-fanout')?.latency_us?.p99),
          fmt(r.cpuUsPerDelivery, 3),
          fmt(r.drops + (r.subscribers_lost ?? 0)),
          fmt(r.errors),
        ]);
      } else if (scenario.mode === 'idle') {
        rows.push([
          peer.label,
          fmt(r.opened),
          `${fmt(r.rssKb / 1024, 1)} MiB`,
          fmt(r.bytesPerConnection),
          fmt(r.marginalBytesPerConnection),
          fmt(r.errors),
        ]);
      } else if (scenario.mode === 'ramp') {
        rows.push([
          peer.label,
          fmt(r.handshakes_per_sec),
          fmt(r.cpuUsPerMessage, 1),
          `${fmt(r.peakRssKb / 1024, 1)} MiB`,
          fmt(r.errors),
        ]);
      } else {
        rows.push([
          peer.label,
          fmt(r.msgs_per_sec),
          lappsRate(peer) ? `${fmt(lappsRate(peer) / r.msgs_per_sec, 2)}x` : '-',
          fmt(r.latency_us?.p50),
          fmt(r.latency_us?.p99),
          fmt(r.latency_us?.p999),
          fmt(r.cpuUsPerMessage, 2),
          `${fmt(r.peakRssKb / 1024, 1)} MiB`,
          fmt(r.errors),
        ]);
      }
    }
    lines.push(table(rows));
    const notes = new Set(peers.map((p) => results[p.name]?.[scenario.name]?.note).filter(Boolean));
    // The load generator has one core: near all of it, the rate is (also) its limit.
    const clientBound = peers.filter(
      (p) => (results[p.name]?.[scenario.name]?.client_cpu_pct ?? 0) >= 90,
    );
    if (clientBound.length) {
      notes.add(
        `load generator at >= 90% of its core with ${clientBound.map((p) => p.name).join(', ')}: ` +
          'that rate may be its limit; the server CPU per message (or handshake) compares fairer',
      );
    }
    for (const p of peers.filter((x) => x.tls)) {
      const t = results[p.name]?.[scenario.name]?.tls;
      if (t?.protocol) {
        const full = t.handshakes - t.resumed;
        notes.add(
          `${p.name}: ${t.protocol} ${t.cipher} ${t.group}, ${fmt(full)} full TLS handshakes` +
            (t.resumed ? `, ${fmt(t.resumed)} resumed` : ''),
        );
      }
    }
    for (const n of notes) lines.push(`note: ${n}`);
    lines.push('');
  }
  return lines.join('\n');
}

// --- every process fast ------------------------------------------------------------------

/**
 * closed-100x32 on `--fresh N` freshly started processes of each of lapps, lapps-c and tcp
 * (those among --peers), one after another: a server that is fast in most processes and
 * slow in some is slow. Quotes every run, the median and the slowest against it.
 */
async function freshRuns() {
  // By default in a full run that includes closed-100x32.
  const byDefault = !quick && scenarios.some((s) => s.name === 'closed-100x32');
  const n = Number(opts.fresh ?? (byDefault ? 20 : 0));
  if (!Number.isInteger(n) || n < 0) fail(`--fresh: a count, not ${opts.fresh}`);
  if (n === 0) return undefined;
  const scenario = allScenarios.find((s) => s.name === 'closed-100x32');
  const out = { scenario: scenario.name, runs: n, peers: {} };
  for (const peer of peers.filter((p) => ['lapps', 'lapps-c', 'tcp'].includes(p.name))) {
    const runs = [];
    for (let i = 0; i < n; i++) {
      process.stdout.write(`bench: fresh ${scenario.name} ${i + 1}/${n} on ${peer.name} ... `);
      const r = await runScenario(peer, scenario).catch((err) => ({ error: err.message }));
      console.log(r.error ? `failed: ${r.error.split('\n')[0]}` : `${fmt(r.msgs_per_sec)} msg/s`);
      runs.push({
        msgsPerSec: r.msgs_per_sec ?? null,
        cpuUsPerMessage: r.cpuUsPerMessage ?? null,
        error: r.error,
      });
    }
    const rates = runs
      .map((r) => r.msgsPerSec)
      .filter((x) => x !== null)
      .sort((a, b) => a - b);
    const median = rates.length ? rates[Math.floor((rates.length - 1) / 2)] : null;
    out.peers[peer.name] = {
      runs,
      median,
      slowest: rates[0] ?? null,
      fastest: rates.at(-1) ?? null,
      slowestVsMedian: median ? rates[0] / median : null,
    };
  }
  return out;
}

function freshReport(fresh) {
  const lines = [`${fresh.scenario} on ${fresh.runs} fresh processes (msg/s, in run order):`];
  for (const [name, p] of Object.entries(fresh.peers)) {
    lines.push(
      `  ${name.padEnd(8)} median ${fmt(p.median)}, slowest ${fmt(p.slowest)} ` +
        `(${fmt(p.slowestVsMedian * 100, 1)}% of the median), fastest ${fmt(p.fastest)}`,
    );
    lines.push(
      `           ${p.runs.map((r) => (r.error ? 'failed' : fmt(r.msgsPerSec))).join(' ')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

// --- main --------------------------------------------------------------------------------

async function main() {
  if (!opts['no-build']) build();
  const started = Date.now();
  const results = {};
  for (const scenario of scenarios) {
    for (const peer of peers) {
      process.stdout.write(`bench: ${scenario.name} on ${peer.name} ... `);
      let r;
      try {
        r = await runScenario(peer, scenario);
        console.log(
          r.skipped
            ? `skipped: ${r.skipped}`
            : scenario.mode === 'idle'
              ? `${fmt(r.opened)} open, ${fmt(r.bytesPerConnection)} B/conn (marginal ${fmt(r.marginalBytesPerConnection)})`
              : scenario.mode === 'ramp'
                ? `${fmt(r.handshakes_per_sec)} hs/s`
                : `${fmt(r.msgs_per_sec)} msg/s`,
        );
      } catch (err) {
        r = { error: err.message };
        console.log(`failed: ${err.message.split('\n')[0]}`);
      }
      (results[peer.name] ??= {})[scenario.name] = r;
    }
  }
  const fresh = await freshRuns();
  const mqrResults = mqrPicked.length ? await runMqr(mqrPicked, { quick }) : undefined;
  const microResults = micro();
  let callgrindResult;
  if (opts.callgrind) {
    callgrindResult = {};
    for (const load of callgrindLoads) {
      callgrindResult[load.name] = await callgrind(load).catch((e) => ({ error: e.message }));
    }
  }

  const text = report(results);
  console.log(`\n${text}`);
  if (fresh) console.log(freshReport(fresh));
  if (mqrResults) console.log(`${mqrTable(mqrResults, mqrPicked)}\n`);
  if (microResults.parser) {
    console.log('frame parser (parse + unmask + UTF-8), one core:');
    for (const c of microResults.parser.cases ?? microResults.parser) {
      console.log(
        `  ${String(c.case).padEnd(28)} ${fmt(c.frames_per_sec / 1e6, 1).padStart(8)} M frames/s ${fmt(c.gbytes_per_sec, 2).padStart(8)} GB/s`,
      );
    }
  }
  if (microResults.encoder) {
    for (const c of microResults.encoder.cases ?? microResults.encoder) {
      console.log(`frame encoder ${c.case}: ${fmt(c.frames_per_sec / 1e6, 1)} M frames/s`);
    }
  }
  for (const [name, r] of Object.entries(callgrindResult ?? {})) {
    console.log(
      r.error
        ? `callgrind ${name}: failed: ${r.error}`
        : `callgrind ${name}: ${fmt(r.instructionsPerMessage)} instructions per echoed message in the worker (${fmt(r.messages)} messages)`,
    );
  }

  const date = new Date().toISOString().replace(/[:]/g, '-').replace(/\..*/, '');
  const dir = path.join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const doc = {
    date: new Date().toISOString(),
    quick,
    machine: { cpus: os.cpus()[0]?.model, cores: os.availableParallelism(), node: process.version },
    pinning: { server: serverCore, client: clientCore },
    duration,
    warmup,
    peers: peers.map((p) => ({ name: p.name, label: p.label })),
    scenarios: scenarios.map((s) => ({ name: s.name, label: s.label })),
    results,
    mqr: mqrResults,
    micro: microResults,
    callgrind: callgrindResult,
    fresh,
    seconds: (Date.now() - started) / 1000,
  };
  const json = path.join(dir, `${date}.json`);
  writeFileSync(json, `${JSON.stringify(doc, null, 2)}\n`);
  writeFileSync(path.join(dir, `${date}.svg`), renderChart(doc));
  console.log(
    `\nresults: ${path.relative(root, json)} and ${path.relative(root, json.replace(/json$/, 'svg'))}`,
  );
}

main().catch((err) => fail(err.stack ?? String(err)));
