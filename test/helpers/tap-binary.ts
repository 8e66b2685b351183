/**
 * Runs a native test executable that prints TAP (the C++ protocol tests, the Lua module
 * tests) and reports each of its cases as one tap assertion, plus checks that the plan was
 * printed, every case reported (no crash midway) and the exit code is 0.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

import type { Test } from 'tap';

import { repoRoot } from './server.js';

/** One case of the runner's TAP output, with the diagnostics printed after it. */
interface NativeCase {
  ok: boolean;
  name: string;
  diagnostics: string[];
}

function parseTap(stdout: string): { plan: number | undefined; cases: NativeCase[] } {
  let plan: number | undefined;
  const cases: NativeCase[] = [];
  for (const line of stdout.split('\n')) {
    const planMatch = /^1\.\.(\d+)$/.exec(line);
    const caseMatch = /^(ok|not ok) \d+ - (.*)$/.exec(line);
    if (planMatch) {
      plan = Number(planMatch[1]);
    } else if (caseMatch) {
      cases.push({ ok: caseMatch[1] === 'ok', name: caseMatch[2] ?? '', diagnostics: [] });
    } else if (line.startsWith('# ') && cases.length > 0) {
      cases[cases.length - 1]?.diagnostics.push(line.slice(2));
    }
  }
  return { plan, cases };
}

/**
 * Runs CMake target `target` from build/Release, or the path in env `envVar` (set by the
 * sanitizer pass to the instrumented build).
 */
export function runTapBinary(t: Test, target: string, envVar: string): void {
  const bin = process.env[envVar] ?? path.join(repoRoot, 'build', 'Release', target);
  if (!existsSync(bin)) {
    t.fail(
      `test executable not found at ${bin}: build the ${target} CMake target ` +
        `(npm run build:native) or set ${envVar}`,
    );
    return;
  }
  const run = spawnSync(bin, [], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 110_000,
  });
  if (run.error) {
    t.fail(`could not run ${bin}: ${run.error.message}`);
    return;
  }
  const { plan, cases } = parseTap(run.stdout);
  t.ok(plan !== undefined && plan > 0, 'runner printed a plan', { stderr: run.stderr });
  t.equal(cases.length, plan, 'every planned case reported (no crash midway)', {
    stderr: run.stderr,
  });
  for (const c of cases) t.ok(c.ok, c.name, { diagnostics: c.diagnostics.join('\n') });
  t.equal(run.status, 0, 'runner exited with code 0', { signal: run.signal, stderr: run.stderr });
}
