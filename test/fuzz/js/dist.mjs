/**
 * The JavaScript fuzz targets run the compiled control plane (dist/lib, what the package
 * ships) rather than the TypeScript through a loader: plain node imports it at full speed,
 * and V8's coverage offsets are those of the code that runs. `ensureDist` compiles it when it
 * is missing or older than its source.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** lib/**\/*.ts whose dist/lib/**\/*.js is missing or older. */
export function staleDist() {
  const lib = path.join(root, 'lib');
  const stale = [];
  for (const rel of readdirSync(lib, { recursive: true })) {
    const name = String(rel);
    if (!name.endsWith('.ts') || name.endsWith('.d.ts')) continue;
    const out = path.join(root, 'dist', 'lib', name.replace(/\.ts$/, '.js'));
    const built = statSync(out, { throwIfNoEntry: false });
    if (!built || built.mtimeMs < statSync(path.join(lib, name)).mtimeMs) stale.push(name);
  }
  return stale;
}

/** Compiles lib/ into dist/ (tsc -p tsconfig.json) if it is stale; throws if tsc fails. */
export function ensureDist() {
  if (staleDist().length === 0) return;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`tsc -p tsconfig.json failed (status ${r.status})`);
}
