/**
 * Runs the Lua tests of the cbor, json and nljson modules and reports each TAP case as one
 * assertion. The executable is built by CMake (target lapps_lua_tests); its path can be
 * overridden with LAPPS_LUA_TESTS_BIN, e.g. for a sanitizer build.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin =
  process.env.LAPPS_LUA_TESTS_BIN ?? path.join(repoRoot, 'build', 'Release', 'lapps_lua_tests');

/** One case of the runner's TAP output, with the diagnostics printed after it. */
interface NativeCase {
  ok: boolean;
  id: number;
  name: string;
  diagnostics: string[];
}

function parseTap(stdout: string): { plan: number | undefined; cases: NativeCase[] } {
  let plan: number | undefined;
  const cases: NativeCase[] = [];
  for (const line of stdout.split('\n')) {
    const planMatch = /^1\.\.(\d+)$/.exec(line);
    const caseMatch = /^(ok|not ok) (\d+) - (.*)$/.exec(line);
    if (planMatch) {
      plan = Number(planMatch[1]);
    } else if (caseMatch) {
      const [, status, id, name] = caseMatch;
      cases.push({ ok: status === 'ok', id: Number(id), name: name ?? '', diagnostics: [] });
    } else if (line.startsWith('# ') && cases.length > 0) {
      cases[cases.length - 1]?.diagnostics.push(line.slice(2));
    }
  }
  return { plan, cases };
}

if (!existsSync(bin)) {
  t.fail(
    `Lua module test executable not found at ${bin}: build the lapps_lua_tests CMake target ` +
      '(npm run build:native) or set LAPPS_LUA_TESTS_BIN',
  );
} else {
  const run = spawnSync(bin, [], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 110_000,
  });
  if (run.error) {
    t.fail(`could not run ${bin}: ${run.error.message}`);
  } else {
    const { plan, cases } = parseTap(run.stdout);
    t.ok(plan !== undefined && plan > 0, 'runner printed a plan', { stderr: run.stderr });
    t.equal(cases.length, plan, 'every planned case reported (no crash midway)', {
      stderr: run.stderr,
    });
    for (const c of cases) t.ok(c.ok, c.name, { diagnostics: c.diagnostics.join('\n') });
    t.equal(run.status, 0, 'runner exited with code 0', { signal: run.signal, stderr: run.stderr });
  }
}
