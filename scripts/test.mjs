#!/usr/bin/env node
/**
 * `npm test`: every check CI runs, in order, stopping at the first failure.
 *
 *   node scripts/test.mjs              all steps
 *   node scripts/test.mjs tap sanitize only the named steps (names in `steps` below)
 *
 * Prints one summary line per step with its time, then `tests: N passed, N failed` over
 * every tap run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { addonFile, buildNative, nativeTestsFile, root } from './build-native.mjs';

const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
const tapPackage = require.resolve('tap/package.json');
const tap = path.join(path.dirname(tapPackage), require(tapPackage).bin.tap);

/** Test counts summed over every tap run. */
const counts = { pass: 0, fail: 0, seen: false };

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  if (r.error) {
    console.error(`cannot run ${cmd}: ${r.error.message}`);
    return 1;
  }
  return r.status ?? 1;
}

/** The last "# { total: N, pass: N, fail: N }" line of tap's output. */
function recordCounts(output) {
  const lines = output.match(/^# \{ total: .*\}$/gm);
  if (!lines) return;
  const last = lines[lines.length - 1];
  const field = (name) => Number(new RegExp(`${name}: (\\d+)`).exec(last)?.[1] ?? 0);
  counts.pass += field('pass');
  counts.fail += field('fail');
  counts.seen = true;
}

/**
 * Runs tap, passing its output through while keeping it to read the counts. On a terminal
 * tap gets the terminal (its own reporter is nicer there) and no counts are read.
 */
function runTap(args, env = process.env) {
  if (process.stdout.isTTY) return Promise.resolve(run(process.execPath, [tap, ...args], { env }));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [tap, ...args], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      output += chunk.toString();
    });
    child.on('error', (err) => {
      console.error(`cannot run tap: ${err.message}`);
      resolve(1);
    });
    child.on('close', (code) => {
      recordCounts(output);
      resolve(code ?? 1);
    });
  });
}

function hasTests(dir) {
  const abs = path.join(root, dir);
  return (
    existsSync(abs) &&
    readdirSync(abs, { recursive: true }).some((f) => String(f).endsWith('.test.ts'))
  );
}

/** The sanitizer runtime to preload: node itself is not instrumented, so ASan must load first. */
function asanRuntime() {
  const r = spawnSync('g++', ['-print-file-name=libasan.so'], { encoding: 'utf8' });
  const file = r.stdout?.trim() ?? '';
  return path.isAbsolute(file) && existsSync(file) ? file : undefined;
}

async function sanitize() {
  const status = buildNative('sanitize');
  if (status !== 0) return status;
  const dirs = ['test/conformance', 'test/security', 'test/native', 'test/lua', 'test/cmod'].filter(
    hasTests,
  );
  if (dirs.length === 0) {
    console.log('sanitize: no native-facing tests found; built only');
    return 0;
  }
  const libasan = asanRuntime();
  if (!libasan) {
    console.error('sanitize: libasan.so not found (g++ -print-file-name=libasan.so)');
    return 1;
  }
  return runTap(dirs, {
    ...process.env,
    LAPPS_ADDON: addonFile('sanitize'),
    LAPPS_NATIVE_TESTS_BIN: nativeTestsFile('sanitize'),
    LAPPS_LUA_TESTS_BIN: nativeTestsFile('sanitize', 'lapps_lua_tests'),
    LAPPS_FUZZ_REPLAY_DIR: path.dirname(
      nativeTestsFile('sanitize', 'lapps_fuzz_replay_cbor_decoder'),
    ),
    // libubsan needs no preload: the addon links it and it does not interpose malloc.
    LD_PRELOAD: libasan,
    // Node and V8 keep memory until exit by design: leak reports would be noise.
    ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1',
    UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
    // Sanitized code runs a few times slower: test deadlines stretch with it.
    LAPPS_TEST_TIME_SCALE: '3',
  });
}

function luacheck() {
  const dirs = ['services', 'examples', 'test/lua', 'native/src', 'bench'].filter((d) =>
    existsSync(path.join(root, d)),
  );
  if (spawnSync('luacheck', ['--version'], { stdio: 'ignore' }).error) {
    console.error('luacheck not found: install it (Debian: apt-get install -y lua-check)');
    return 1;
  }
  return run('luacheck', dirs);
}

const steps = [
  { name: 'typecheck', run: () => run(process.execPath, [tsc, '-p', 'tsconfig.test.json']) },
  { name: 'lint', run: () => run('npm', ['run', '--silent', 'lint']) },
  {
    name: 'clang-format',
    run: () => run(process.execPath, [path.join(root, 'scripts', 'clang-format-check.mjs')]),
  },
  { name: 'luacheck', run: luacheck },
  { name: 'native', run: () => buildNative('release') },
  {
    name: 'dist',
    // tsc for dist/lib, then the browser bundle of the client (browser tests load it).
    run: () =>
      run(process.execPath, [tsc, '-p', 'tsconfig.json']) ||
      run(process.execPath, [path.join(root, 'scripts', 'bundle-client.mjs')]),
  },
  { name: 'tap', run: () => runTap([]) },
  // The raw conformance suite again, every byte over TLS (wss with the test CA).
  { name: 'wss', run: () => runTap(['test/conformance'], { ...process.env, LAPPS_TEST_TLS: '1' }) },
  { name: 'sanitize', run: sanitize },
];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !steps.some((s) => s.name === w));
if (unknown.length > 0) {
  console.error(`unknown step ${unknown.join(', ')}; steps: ${steps.map((s) => s.name).join(' ')}`);
  process.exit(2);
}
const selected = wanted.length > 0 ? steps.filter((s) => wanted.includes(s.name)) : steps;

/**
 * What the steps need from the system besides what `npm install` checks (the native build),
 * looked for up front so that a missing one is named with its Debian package before
 * anything runs, not minutes in.
 */
const testPrerequisites = [
  { what: 'clang-format', pkg: 'clang-format', ok: () => commandExists('clang-format') },
  { what: 'luacheck', pkg: 'lua-check', ok: () => commandExists('luacheck') },
  {
    what: 'python3 with websockets (interoperability tests)',
    pkg: 'python3 python3-websockets',
    ok: () =>
      spawnSync('/usr/bin/python3', ['-c', 'import websockets'], { stdio: 'ignore' }).status === 0,
  },
  { what: 'chromium (browser tests)', pkg: 'chromium', ok: () => existsSync('/usr/bin/chromium') },
  { what: 'openssl (test certificates)', pkg: 'openssl', ok: () => commandExists('openssl') },
];

function commandExists(name) {
  return spawnSync('sh', ['-c', `command -v "${name}"`], { stdio: 'ignore' }).status === 0;
}

const missing = testPrerequisites.filter((p) => !p.ok());
if (missing.length > 0) {
  console.error(`npm test needs: ${missing.map((m) => m.what).join(', ')}`);
  console.error(
    `install (Debian): apt-get install -y ${missing.map((m) => m.pkg).join(' ')}` +
      ' (the README lists every package; .ci/run installs them)',
  );
  process.exit(1);
}

const results = [];
let failedStep;
for (const step of selected) {
  if (failedStep) {
    results.push({ name: step.name, status: 'skip', seconds: 0 });
    continue;
  }
  console.log(`\n=== ${step.name} ===`);
  const started = process.hrtime.bigint();
  const status = await step.run();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  results.push({ name: step.name, status: status === 0 ? 'ok' : 'FAIL', seconds });
  if (status !== 0) failedStep = step.name;
}

const width = Math.max(...results.map((r) => r.name.length));
console.log('\n=== summary ===');
for (const r of results) {
  const time = r.status === 'skip' ? '' : `${r.seconds.toFixed(1)}s`;
  console.log(`${r.status.padEnd(4)}  ${r.name.padEnd(width)}  ${time}`);
}
if (failedStep) console.log(`failed at step "${failedStep}"`);
if (counts.seen) console.log(`tests: ${counts.pass} passed, ${counts.fail} failed`);
process.exit(failedStep ? 1 : 0);
