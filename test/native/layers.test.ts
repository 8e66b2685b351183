/**
 * The native layers (docs/architecture.md): each directory of native/src is one CMake
 * target that sees its own headers and those of the layers below it, nothing else.
 *
 *   - Every `#include "dir/..."` of every file stays within what its layer may see.
 *   - The build enforces it: with the compile flags CMake gave a file of each layer
 *     (build/compile_commands.json), a header of every layer below compiles and a header of
 *     every other layer is not found.
 *   - Services reach core only through the service contract: lua/ and cmod/ never include
 *     the worker, the server or a connection.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import t from 'tap';

const root = path.resolve(import.meta.dirname, '..', '..');
const src = path.join(root, 'native', 'src');

/** What each layer may include besides itself (transitively closed below). */
const below: Record<string, string[]> = {
  base: [],
  protocol: ['base'],
  codec: ['base', 'protocol'],
  io: ['base'],
  security: ['base', 'protocol'],
  client: ['base', 'protocol', 'io', 'security'],
  core: ['base', 'protocol', 'codec', 'io', 'security'],
  lua: ['base', 'protocol', 'codec', 'io', 'security', 'client', 'core'],
  cmod: ['base', 'protocol', 'codec', 'io', 'security', 'core'],
};

/** Headers from outside native/src, and the layers that may include them. */
const outside: Record<string, string[]> = {
  'lapps.h': ['core', 'cmod'], // native/include: the C API, whose status codes core maps
  'embedded-lua.h': ['lua'], // generated from native/src/lua/chunks/*.lua (cmake/EmbedLua.cmake)
};
const layers = Object.keys(below);

/** Headers of core that a service never includes (it sees core/service-*.h and the rest). */
const notForServices = ['core/worker.h', 'core/server.h', 'core/connection.h'];

function filesOf(layer: string): string[] {
  return readdirSync(path.join(src, layer))
    .filter((f) => /\.(h|cc)$/.test(f))
    .map((f) => path.join(layer, f));
}

function includesOf(file: string): string[] {
  const text = readFileSync(path.join(src, file), 'utf8');
  return [...text.matchAll(/^#include "([^"]+)"/gm)].map((m) => m[1]!);
}

t.test('native/src has exactly these layers (and the addon files at its top)', async (t) => {
  const dirs = readdirSync(src, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  t.same(dirs, [...layers].sort());
});

t.test('every include stays within its layer and those below', async (t) => {
  for (const layer of layers) {
    const allowed = new Set([layer, ...below[layer]!]);
    for (const file of filesOf(layer)) {
      for (const inc of includesOf(file)) {
        if (!inc.includes('/')) {
          t.ok(outside[inc]?.includes(layer), `${file} includes "${inc}"`);
          continue;
        }
        const dir = inc.split('/')[0]!;
        t.ok(allowed.has(dir), `${file} includes "${inc}" (${layer} may see ${[...allowed]})`);
      }
    }
  }
});

t.test('services never include the worker, the server or a connection', async (t) => {
  for (const layer of ['lua', 'cmod']) {
    for (const file of filesOf(layer)) {
      for (const inc of includesOf(file)) {
        t.notOk(notForServices.includes(inc), `${file} includes "${inc}"`);
      }
    }
  }
});

interface CompileCommand {
  directory: string;
  command?: string;
  arguments?: string[];
  file: string;
}

const commandsFile = path.join(root, 'build', 'compile_commands.json');

t.test('the build refuses an upward include', async (t) => {
  t.ok(existsSync(commandsFile), 'build/compile_commands.json exists (npm install builds it)');
  if (!existsSync(commandsFile)) return;
  const commands = JSON.parse(readFileSync(commandsFile, 'utf8')) as CompileCommand[];
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'lapps-layers-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  /** One header of each layer to include. */
  const sample: Record<string, string> = {};
  for (const layer of layers) {
    sample[layer] = filesOf(layer).find((f) => f.endsWith('.h'))!;
  }
  // A layer of headers only (base) has no compile command: its includes are checked above.
  for (const layer of layers.filter((l) => filesOf(l).some((f) => f.endsWith('.cc')))) {
    const cmd = commands.find((c) => path.relative(src, c.file).startsWith(`${layer}/`));
    t.ok(cmd, `a compile command for a file of ${layer}/`);
    if (!cmd) continue;
    const args = cmd.arguments ?? cmd.command!.split(/\s+/).filter(Boolean);
    const probe = path.join(tmp, `${layer}-probe.cc`);
    // The probe sits in its own directory: nothing is found next to it, only through the
    // include directories the layer's target has.
    const flags = args.filter((a, i) => {
      if (a === '-o' || a === '-c') return false;
      if (i > 0 && args[i - 1] === '-o') return false;
      return a !== cmd.file && !a.endsWith(path.relative(cmd.directory, cmd.file));
    });
    const compile = (header: string) => {
      writeFileSync(probe, `#include "${header}"\nint main() { return 0; }\n`);
      return spawnSync(flags[0]!, [...flags.slice(1), '-fsyntax-only', probe], {
        cwd: cmd.directory,
        encoding: 'utf8',
      });
    };
    for (const other of layers) {
      const r = compile(sample[other]!);
      if (other === layer || below[layer]!.includes(other)) {
        t.equal(r.status, 0, `${layer} sees ${sample[other]}: ${r.stderr.split('\n')[0]}`);
      } else {
        t.not(r.status, 0, `${layer} does not see ${sample[other]}`);
        t.match(r.stderr, /No such file or directory/, `${layer}: ${sample[other]} not found`);
      }
    }
  }
});
