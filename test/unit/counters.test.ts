/**
 * The counter names in lib/native.ts (COUNTERS) index the addon's stats block by position,
 * so they must be the `Counter` enum of native/src/core/stats.h, in its order.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import { COUNTERS } from '../../lib/native.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The enumerators of `enum class Counter` before kCount, in order, as snake_case. */
function nativeCounters(): string[] {
  const header = readFileSync(path.join(root, 'native', 'src', 'core', 'stats.h'), 'utf8');
  const body = /enum class Counter\b[^{]*\{([^}]*)\}/.exec(header)?.[1];
  if (body === undefined) throw new Error('stats.h: no enum class Counter');
  const names = body
    .replace(/\/\/[^\n]*/g, '')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .split(',')
    .map((e) => e.replace(/=.*$/s, '').trim())
    .filter((e) => e !== '');
  const end = names.indexOf('kCount');
  if (end !== names.length - 1) throw new Error('stats.h: kCount is not the last enumerator');
  return names.slice(0, end).map((n) => n.replace(/(?<!^)([A-Z])/g, '_$1').toLowerCase());
}

t.test('COUNTERS are the Counter enum of stats.h, in order', async (t) => {
  const native = nativeCounters();
  t.ok(native.length > 20, 'stats.h has counters');
  t.same([...COUNTERS], native);
});
