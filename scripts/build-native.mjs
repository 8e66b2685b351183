#!/usr/bin/env node
/**
 * (Re)builds the native addon with cmake-js.
 *
 *   node scripts/build-native.mjs              -> build/      (Release)
 *   node scripts/build-native.mjs --sanitize   -> build-asan/ (RelWithDebInfo, ASan+UBSan)
 *
 * cmake-js only re-runs what changed, so a build with nothing to do takes a second or two.
 * Also imported by install.mjs and test.mjs, so there is one place that knows the flags.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Parallel compile jobs: the project's machines have 2 cores; LAPPS_BUILD_JOBS overrides. */
const jobs = process.env.LAPPS_BUILD_JOBS || '2';

/** Where each kind of build goes, and the cmake-js configuration it uses. */
export const builds = {
  release: { out: 'build', config: 'Release', defines: [] },
  // RelWithDebInfo: optimised enough to run the conformance suite in reasonable time,
  // with the debug info sanitizer reports need.
  sanitize: { out: 'build-asan', config: 'RelWithDebInfo', defines: ['LAPPS_SANITIZE=ON'] },
};

/** Path of the addon a build produces (cmake-js puts it under <out>/<config>/). */
export function addonFile(kind) {
  const b = builds[kind];
  return path.join(root, b.out, b.config, 'lapps.node');
}

/**
 * Path of the native unit test runner a build produces: next to the addon, or under
 * <out>/Release where CMakeLists.txt pins it whatever the configuration.
 */
export function nativeTestsFile(kind, target = 'lapps_native_tests') {
  const b = builds[kind];
  const candidates = [b.config, 'Release', '.'].map((d) => path.join(root, b.out, d, target));
  return candidates.find((f) => existsSync(f)) ?? candidates[0];
}

/** cmake-js from our own dependencies, wherever npm hoisted it. */
export function cmakeJs() {
  return createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js');
}

/**
 * Builds one kind of build; returns the exit status (0 = built). Output goes to this
 * process's stdout/stderr. `tests`: also the native test runners, the test C modules and
 * the fuzz replays (`npm test` asks for them; `npm install` builds the addon and the C
 * echo service only, about half the compile time).
 */
export function buildNative(kind = 'release', { tests = true } = {}) {
  const b = builds[kind];
  const options = [
    '--log-level',
    'warn',
    '--out',
    b.out,
    '--config',
    b.config,
    ...b.defines.map((d) => `--CD${d}`),
    `--CDLAPPS_NATIVE_TESTS=${tests ? 'ON' : 'OFF'}`,
  ];
  // cmake-js build configures only a new build directory: one configured with the other
  // choice of tests is configured again (incrementally: what is built stays built).
  const cache = path.join(root, b.out, 'CMakeCache.txt');
  const want = `LAPPS_NATIVE_TESTS:BOOL=${tests ? 'ON' : 'OFF'}`;
  if (existsSync(cache) && !readFileSync(cache, 'utf8').includes(want)) {
    const c = spawnSync(process.execPath, [cmakeJs(), 'configure', ...options], {
      cwd: root,
      stdio: 'inherit',
    });
    if (c.error || c.status !== 0) {
      console.error(`lapps: cmake-js configure failed${c.error ? `: ${c.error.message}` : ''}`);
      return c.status || 1;
    }
  }
  const args = [cmakeJs(), 'build', ...options, '-p', jobs];
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.error) {
    console.error(`lapps: cannot run cmake-js: ${r.error.message}`);
    return 1;
  }
  return r.status ?? 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const unknown = process.argv.slice(2).filter((a) => a !== '--sanitize');
  if (unknown.length > 0) {
    console.error(
      `usage: node scripts/build-native.mjs [--sanitize] (unknown: ${unknown.join(' ')})`,
    );
    process.exit(2);
  }
  const kind = process.argv.includes('--sanitize') ? 'sanitize' : 'release';
  const status = buildNative(kind);
  if (status === 0) console.log(`lapps: built ${path.relative(root, addonFile(kind))}`);
  process.exit(status);
}
