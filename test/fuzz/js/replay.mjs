#!/usr/bin/env node
/**
 * Replays a JavaScript fuzz target's corpus without libFuzzer (so without clang): every
 * file in the given directories goes through the target once, as the fuzzer's host runs it.
 * Prints TAP, one line per directory; a finding prints the file and the stack, and fails.
 * The JavaScript counterpart of test/fuzz/replay.cc.
 *
 *   node test/fuzz/js/replay.mjs config test/fuzz/corpus/config
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import { ensureDist } from './dist.mjs';

const [targetName, ...dirs] = process.argv.slice(2);
if (!targetName || !/^[a-z0-9-]+$/.test(targetName) || dirs.length === 0) {
  console.error('usage: replay.mjs <target> <corpus-dir>...');
  process.exit(2);
}
ensureDist();
const target = await import(`./${targetName}.mjs`);
const instance = target.createTarget();
let failed = 0;
console.log(`1..${dirs.length}`);
try {
  dirs.forEach((dir, i) => {
    const files = readdirSync(dir)
      .filter((f) => statSync(path.join(dir, f)).isFile())
      .sort();
    if (files.length === 0) {
      console.log(`not ok ${i + 1} - ${dir}: no corpus files`);
      failed++;
      return;
    }
    const findings = [];
    for (const f of files) {
      try {
        instance.run(readFileSync(path.join(dir, f)));
      } catch (err) {
        findings.push(f);
        console.error(`# finding in ${path.join(dir, f)}:`);
        console.error(err instanceof Error ? (err.stack ?? String(err)) : String(err));
      }
    }
    if (findings.length > 0) {
      console.log(`not ok ${i + 1} - ${dir}: ${findings.length} of ${files.length} inputs fail`);
      failed++;
    } else {
      console.log(`ok ${i + 1} - ${dir}: ${files.length} inputs replayed`);
    }
  });
} finally {
  instance.close();
}
process.exit(failed ? 1 : 0);
