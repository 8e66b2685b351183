/**
 * Replays every fuzz target's corpus (test/fuzz/corpus/<target>: seeds, and inputs that once
 * crashed) through the target's function, built without libFuzzer (CMake targets
 * lapps_fuzz_replay_*). The sanitizer pass runs the ASan/UBSan build of the same binaries
 * (LAPPS_FUZZ_REPLAY_DIR). `npm run fuzz` is the fuzzing itself. JavaScript targets
 * (test/fuzz/js/<target>.mjs) have no native code to sanitize; test/unit replays them.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

import { repoRoot } from '../helpers/server.js';

const binDir = process.env.LAPPS_FUZZ_REPLAY_DIR ?? path.join(repoRoot, 'build', 'Release');
const corpusRoot = path.join(repoRoot, 'test', 'fuzz', 'corpus');

const jsTarget = (target: string): boolean =>
  existsSync(path.join(repoRoot, 'test', 'fuzz', 'js', `${target}.mjs`));
const nativeTargets = readdirSync(corpusRoot)
  .filter((target) => !jsTarget(target))
  .sort();

for (const target of nativeTargets) {
  t.test(`fuzz corpus: ${target}`, async (t) => {
    const bin = path.join(binDir, `lapps_fuzz_replay_${target.replaceAll('-', '_')}`);
    if (!existsSync(bin)) {
      t.fail(`${bin} not built (npm run build:native)`);
      return;
    }
    const files = readdirSync(path.join(corpusRoot, target));
    t.ok(files.length > 0, 'the corpus has inputs');
    const run = spawnSync(bin, [path.join(corpusRoot, target)], { encoding: 'utf8' });
    t.equal(run.status, 0, `replayed without a crash${run.stderr ? `: ${run.stderr}` : ''}`);
    t.match(run.stdout, new RegExp(`ok 1 - .*: ${files.length} inputs replayed`));
  });
}
