#!/usr/bin/env node
// `npm run fuzz`: builds the libFuzzer targets (test/fuzz/<target>.cc) with clang into
// build-fuzz/ and runs each for a while on a working corpus seeded from test/fuzz/corpus.
// JavaScript targets (test/fuzz/js/<target>.mjs, e.g. config) run through the bridge
// test/fuzz/js-bridge.cc on the compiled dist/lib, which is rebuilt first if stale. A
// test/fuzz/<target>.dict is passed as the target's dictionary.
//
//   npm run fuzz                                   every target, 60 s each
//   npm run fuzz -- --seconds 1800 --targets frame-parser,handshake-parser
//
// A crash stops that target and leaves its input in build-fuzz/artifacts/; add it to
// test/fuzz/corpus/<target>/ once fixed, so `npm test` replays it for ever.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { root } from './build-native.mjs';
import { ensureDist } from '../test/fuzz/js/dist.mjs';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '60' }, targets: { type: 'string' } },
});
const all = readdirSync(path.join(root, 'test', 'fuzz', 'corpus')).sort();
const targets = values.targets ? values.targets.split(',') : all;
const unknown = targets.filter((t) => !all.includes(t));
if (unknown.length) {
  console.error(`unknown fuzz targets: ${unknown.join(', ')} (have: ${all.join(', ')})`);
  process.exit(2);
}
if (spawnSync('clang++', ['--version'], { stdio: 'ignore' }).error) {
  console.error('clang++ not found: libFuzzer needs clang (Debian: apt-get install -y clang)');
  process.exit(1);
}

const out = path.join(root, 'build-fuzz');
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { stdio: 'inherit', ...opts }).status;
if (
  run('cmake', [
    '-S',
    root,
    '-B',
    out,
    '-DCMAKE_BUILD_TYPE=RelWithDebInfo',
    '-DCMAKE_C_COMPILER=clang',
    '-DCMAKE_CXX_COMPILER=clang++',
    '-DLAPPS_FUZZ=ON',
    '-DLAPPS_NATIVE_TESTS=OFF',
    '-Wno-dev',
    '--log-level=WARNING',
  ]) !== 0 ||
  run('cmake', [
    '--build',
    out,
    '-j',
    '2',
    '--target',
    ...targets.map((t) => `lapps_fuzz_${t.replaceAll('-', '_')}`),
  ]) !== 0
) {
  process.exit(1);
}

if (targets.some((t) => existsSync(path.join(root, 'test', 'fuzz', 'js', `${t}.mjs`)))) {
  ensureDist();
}

const artifacts = path.join(out, 'artifacts');
mkdirSync(artifacts, { recursive: true });
const results = [];
for (const target of targets) {
  const corpus = path.join(out, 'corpus', target);
  mkdirSync(corpus, { recursive: true });
  cpSync(path.join(root, 'test', 'fuzz', 'corpus', target), corpus, { recursive: true });
  const bin = path.join(out, 'Release', `lapps_fuzz_${target.replaceAll('-', '_')}`);
  console.log(`=== ${target}: ${values.seconds} s`);
  const dict = path.join(root, 'test', 'fuzz', `${target}.dict`);
  const status = run(bin, [
    `-max_total_time=${values.seconds}`,
    '-print_final_stats=1',
    `-artifact_prefix=${artifacts}/${target}-`,
    ...(existsSync(dict) ? [`-dict=${dict}`] : []),
    corpus,
  ]);
  results.push([target, status === 0 ? 'ok' : `CRASH (exit ${status}), see ${artifacts}`]);
}
console.log('=== summary');
for (const [target, result] of results) console.log(`${target.padEnd(18)} ${result}`);
process.exit(results.every(([, r]) => r === 'ok') ? 0 : 1);
