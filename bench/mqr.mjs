/**
 * The `mqr` scenario group of `npm run bench` (lapps only): LAppS's mqr_sender posting in a
 * tight loop to mqr_receiver instances, each counting what it receives and printing
 * "received N" every second. Every scenario starts `lapps start --lapps-home` on a home made
 * for it in a temporary directory, lets it warm up, reads each receiver's count at the
 * start and the end of a fixed window (from the lines it prints, with their timestamps),
 * and the server's CPU time over the same window.
 *
 *   mqr-example   examples/lapps-home as written (its other services too), 2 receivers
 *   mqr-1k        the same pair, each message carrying a 1 KiB string
 *   mqr-per-core  one receiver per core, the pair alone
 *
 * Also runnable alone: node bench/mqr.mjs [--quick] [--scenarios a,b] [--json]
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { fmt, table } from './format.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const exampleHome = path.join(root, 'examples', 'lapps-home');
const cores = os.availableParallelism();

/** Scenarios: how to build the lapps home each runs on. */
export const mqrScenarios = [
  {
    name: 'mqr-example',
    label: 'mqr: LAppS example (sender -> 2 receivers)',
    home: (dir) => cpSync(exampleHome, dir, { recursive: true }),
  },
  {
    name: 'mqr-1k',
    label: 'mqr: 1 KiB payloads (sender -> 2 receivers)',
    home: (dir) => pairHome(dir, 2, path.join(root, 'bench', 'peers', 'mqr_sender_1k.lua')),
  },
  {
    name: 'mqr-per-core',
    label: `mqr: one receiver per core (${cores})`,
    home: (dir) => pairHome(dir, cores),
  },
];

/** A home with the example's sender (or `senderSource`) and `receivers` receivers alone. */
function pairHome(dir, receivers, senderSource) {
  const apps = path.join(exampleHome, 'apps');
  cpSync(path.join(apps, 'mqr_receiver'), path.join(dir, 'apps', 'mqr_receiver'), {
    recursive: true,
  });
  cpSync(path.join(apps, 'mqr_sender'), path.join(dir, 'apps', 'mqr_sender'), {
    recursive: true,
  });
  if (senderSource) cpSync(senderSource, path.join(dir, 'apps', 'mqr_sender', 'mqr_sender.lua'));
  cpSync(path.join(exampleHome, 'etc'), path.join(dir, 'etc'), { recursive: true });
  const lapps = { directories: { applications: 'apps', deploy: 'deploy', tmp: 'tmp' } };
  lapps.services = {
    mqr_sender: { auto_start: true, standalone: true, instances: 1, preload: ['mqr'] },
    mqr_receiver: {
      auto_start: true,
      standalone: true,
      instances: receivers,
      preload: ['mqr', 'time'],
      depends: ['mqr_sender'],
    },
  };
  writeFileSync(path.join(dir, 'etc', 'conf', 'lapps.json'), JSON.stringify(lapps, null, 2));
}

/** CPU seconds (user + system) the process has used, all threads. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs one scenario: warm-up, then a window of `seconds`. Resolves with per-receiver rates
 * (messages/s), their sum, and the server's CPU per received message (ns).
 */
export async function runMqrScenario(scenario, { warmup = 2, seconds = 5, port } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lapps-bench-mqr-'));
  try {
    scenario.home(dir);
    const args = [path.join(root, 'bin', 'lapps.js'), 'start', '--lapps-home', dir];
    // The example's fixed port may be taken (another run): a free one, or the caller's.
    args.push('--port', String(port ?? 0));
    const child = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    // receiver -> [{ t: ms, n: count }]
    const seen = new Map();
    let out = '';
    const onData = (d) => {
      out += d.toString();
      let nl;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        const m = /^(\S+) .*\] (mqr_receiver#\d+) received (\d+)$/.exec(line);
        if (!m) continue;
        const list = seen.get(m[2]) ?? [];
        list.push({ t: Date.parse(m[1]), n: Number(m[3]) });
        seen.set(m[2], list);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await sleep(warmup * 1000);
      if (child.exitCode !== null) throw new Error(`lapps exited with ${child.exitCode}`);
      const cpu0 = cpuSeconds(child.pid);
      const wall0 = Date.now();
      await sleep(seconds * 1000);
      const cpu1 = cpuSeconds(child.pid);
      const wall1 = Date.now();
      const receivers = {};
      let total = 0;
      for (const [name, list] of [...seen].sort()) {
        // The lines printed inside the window (timestamps are the receivers' own).
        const inside = list.filter((p) => p.t >= wall0 && p.t <= wall1 + 500);
        if (inside.length < 2) continue;
        const a = inside[0];
        const b = inside[inside.length - 1];
        const rate = ((b.n - a.n) * 1000) / (b.t - a.t);
        receivers[name] = Math.round(rate);
        total += rate;
      }
      if (Object.keys(receivers).length === 0) throw new Error('no receiver printed its count');
      const cpuSec = cpu1 - cpu0;
      const wallSec = (wall1 - wall0) / 1000;
      return {
        receivers,
        per_receiver: Math.round(total / Object.keys(receivers).length),
        total_per_sec: Math.round(total),
        server_cpu_pct: Math.round((cpuSec / wallSec) * 100),
        cpu_ns_per_msg: total > 0 ? Math.round((cpuSec / wallSec / total) * 1e9) : null,
      };
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(timer);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The table of the group's results (`results`: scenario name -> result or { error }). */
export function mqrTable(results, scenarios = mqrScenarios) {
  const rows = [['mqr (lapps)', 'msg/s per receiver', 'each receiver', 'CPU ns/msg', 'CPU %']];
  for (const s of scenarios) {
    const r = results[s.name];
    if (!r) continue;
    if (r.error) {
      rows.push([s.label, `failed: ${r.error.split('\n')[0]}`, '', '', '']);
      continue;
    }
    rows.push([
      s.label,
      fmt(r.per_receiver),
      Object.values(r.receivers)
        .map((x) => fmt(x))
        .join(' / '),
      fmt(r.cpu_ns_per_msg),
      fmt(r.server_cpu_pct),
    ]);
  }
  return table(rows);
}

/** Runs the scenarios one after the other; logs progress like run.mjs. */
export async function runMqr(scenarios, { quick = false } = {}) {
  const results = {};
  for (const s of scenarios) {
    process.stdout.write(`bench: ${s.name} on lapps ... `);
    try {
      results[s.name] = await runMqrScenario(s, quick ? { warmup: 2, seconds: 3 } : {});
      console.log(`${fmt(results[s.name].per_receiver)} msg/s per receiver`);
    } catch (err) {
      results[s.name] = { error: err.message };
      console.log(`failed: ${err.message}`);
    }
  }
  return results;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      scenarios: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const names = values.scenarios?.split(',');
  const list = mqrScenarios.filter((s) => !names || names.includes(s.name));
  const results = await runMqr(list, { quick: values.quick });
  console.log(`\n${mqrTable(results, list)}`);
  if (values.json) console.log(JSON.stringify(results, null, 2));
}
