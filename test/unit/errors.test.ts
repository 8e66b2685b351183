/**
 * Error codes are one registry (lib/errors.ts), every one listed in docs/errors.md: a code
 * used in lib/, bin/ or by the addon but missing from the table or the docs fails here, and
 * so does a code the docs list that no longer exists. The client's error classes are
 * listed there too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import { CodedError, ERROR_CODES } from '../../lib/errors.js';
import { ConfigError } from '../../lib/config/issues.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const docs = readFileSync(path.join(root, 'docs', 'errors.md'), 'utf8');
const table = Object.keys(ERROR_CODES);

/** A table row of docs/errors.md whose first cell is `name` in backquotes. */
function row(name: string): RegExp {
  return new RegExp(`^\\|\\s*\`${name}\`\\s*\\|`, 'm');
}

/** Files under `dir` (relative to the repo) whose names end with one of `exts`. */
function files(dir: string, exts: string[]): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && exts.some((x) => e.name.endsWith(x)))
    .map((e) => path.join(e.parentPath, e.name));
}

/** Codes the sources set or name: `code: 'X'`, `code = 'X'`, any 'LAPPS_X' literal. */
function codesUsed(): Map<string, string> {
  const used = new Map<string, string>(); // code -> a file using it
  const patterns = [
    /\bcode\s*[:=]\s*['"`]([A-Za-z][A-Za-z0-9_]*)['"`]/g,
    /['"`](LAPPS_[A-Z0-9_]+)['"`]/g,
    /\.Set\(\s*"code"\s*,\s*"([^"]+)"/g, // the addon: err.Set("code", "...")
  ];
  const sources = [
    ...files('lib', ['.ts']),
    ...files('bin', ['.js']),
    ...files(path.join('native', 'src'), ['.cc', '.h']),
  ];
  for (const file of sources) {
    const text = readFileSync(file, 'utf8');
    for (const re of patterns) {
      for (const m of text.matchAll(re)) used.set(m[1]!, path.relative(root, file));
    }
  }
  return used;
}

t.test('every code in the table is in docs/errors.md', async (t) => {
  t.ok(table.length > 0, 'the table has codes');
  for (const code of table) t.match(docs, row(code), `${code} has a row`);
});

t.test('every code docs/errors.md lists is in the table', async (t) => {
  const listed = [...docs.matchAll(/^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|/gm)].map((m) => m[1]);
  t.ok(listed.length >= table.length, 'the docs list codes');
  for (const code of listed) t.ok(table.includes(code!), `${code} is in ERROR_CODES`);
});

t.test('every code used in lib/, bin/ and the addon is in the table', async (t) => {
  const used = codesUsed();
  t.ok(used.has('LAPPS_CONFIG_INVALID'), 'the scan finds the codes (ConfigError)');
  t.ok(used.has('LAPPS_RELOAD_FAILED'), 'the scan finds the codes (addon)');
  for (const [code, file] of used) {
    t.ok(table.includes(code), `${code} (used in ${file}) is in ERROR_CODES`);
  }
});

t.test('every client error class is in docs/errors.md', async (t) => {
  const client = readFileSync(path.join(root, 'lib', 'client', 'errors.ts'), 'utf8');
  const classes = [...client.matchAll(/^export class (\w+)/gm)].map((m) => m[1]!);
  t.ok(classes.length > 0, 'the client has error classes');
  for (const name of classes) t.match(docs, row(name), `${name} has a row`);
});

t.test('CodedError and ConfigError carry their codes', async (t) => {
  const e = new CodedError('LAPPS_START_FAILED', 'x');
  t.equal(e.code, 'LAPPS_START_FAILED');
  t.equal(e.message, 'x');
  t.ok(e instanceof Error);
  const c = new ConfigError('f', [{ path: '/a', message: 'b' }]);
  t.equal(c.code, 'LAPPS_CONFIG_INVALID');
  t.ok(c instanceof CodedError);
  t.equal(c.name, 'ConfigError');
});
