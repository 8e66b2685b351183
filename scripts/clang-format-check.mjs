#!/usr/bin/env node
/**
 * Fails when any C++ source is not formatted as .clang-format says. Checks native/**, the
 * native unit tests and bench/** (.h and .cc). Run `clang-format -i <file>` to fix.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function cppFiles(dir, recursive) {
  const abs = path.join(root, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { recursive, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(h|cc)$/.test(e.name))
    .map((e) => path.relative(root, path.join(e.parentPath ?? e.path, e.name)))
    .sort();
}

const files = [
  ...cppFiles('native', true),
  ...cppFiles(path.join('test', 'native'), false),
  ...cppFiles('bench', true),
];

if (files.length === 0) {
  console.log('clang-format: no C++ files to check');
  process.exit(0);
}

const probe = spawnSync('clang-format', ['--version'], { encoding: 'utf8' });
if (probe.error) {
  console.error('clang-format not found: install it (Debian: apt-get install -y clang-format)');
  process.exit(1);
}

// Batches keep the command line well under the OS argument limit.
let failed = false;
for (let i = 0; i < files.length; i += 100) {
  const batch = files.slice(i, i + 100);
  const r = spawnSync('clang-format', ['--dry-run', '--Werror', ...batch], {
    cwd: root,
    stdio: 'inherit',
  });
  if (r.status !== 0) failed = true;
}
if (failed) {
  console.error('clang-format: files above need formatting (clang-format -i <file>)');
  process.exit(1);
}
console.log(`clang-format: ${files.length} files ok`);
