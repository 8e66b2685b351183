/**
 * No import circle in lib/: a circle makes module initialisation order matter (a value
 * imported across it may still be undefined) and means two modules are one concern.
 * Type-only imports count too: they still tie the modules' designs together.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

const lib = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'lib');

/** Every .ts file under `dir`, absolute. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The lib/ files `file` imports or re-exports (relative specifiers, .js -> .ts). */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+['"]([^'"]+)['"]/gms),
    ...text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm),
    ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]!);
  return specifiers
    .filter((s) => s.startsWith('.'))
    .map((s) => path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts')));
}

/** Each circle once, as the files along it (the first repeated at the end). */
function circles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const next of graph.get(f) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return found;
}

const graph = new Map(sources(lib).map((f) => [f, imports(f)]));

t.test('the import walk sees lib/ (a sanity check of the scanner)', async (t) => {
  const rel = (f: string) => path.relative(lib, f);
  const server = [...graph.entries()].find(([f]) => rel(f) === 'server.ts');
  t.ok(server, 'lib/server.ts found');
  t.ok(server?.[1].map(rel).includes('native.ts'), 'server.ts imports native.ts');
  for (const [file, deps] of graph) {
    for (const d of deps) t.ok(graph.has(d), `${rel(file)} imports ${rel(d)}, a lib/ file`);
  }
});

t.test('no import circle in lib/', async (t) => {
  const found = circles(graph).map((c) => c.map((f) => path.relative(lib, f)).join(' -> '));
  t.same(found, [], 'circles');
});

t.test('a circle is found (the walk itself)', async (t) => {
  const g = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
  ]);
  t.same(circles(g), [['a', 'b', 'c', 'a']]);
});
