/**
 * Replays the corpus of the "config" fuzz target (test/fuzz/corpus/config: seeds, and inputs
 * that once were findings) through test/fuzz/js/config.mjs, as `npm run fuzz` runs it but
 * without libFuzzer or clang. A finding fails with its file and stack. Under test/native so
 * the sanitizer pass replays it too: the target feeds every config to the addon's policy
 * compiler (ACLs, origins, TLS contexts), which then runs with ASan and UBSan.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

t.test('fuzz corpus: config', async (t) => {
  const corpus = path.join(repoRoot, 'test', 'fuzz', 'corpus', 'config');
  const files = readdirSync(corpus);
  t.ok(files.length > 0, 'the corpus has inputs');
  const run = spawnSync(
    process.execPath,
    [path.join(repoRoot, 'test', 'fuzz', 'js', 'replay.mjs'), 'config', corpus],
    { encoding: 'utf8' },
  );
  t.equal(run.status, 0, `replayed without a finding${run.stderr ? `:\n${run.stderr}` : ''}`);
  t.match(run.stdout, new RegExp(`ok 1 - .*: ${files.length} inputs replayed`));
});
