/**
 * The browser bundle (scripts/bundle-client.mjs): built into a temp dir, free of `ws` and
 * Node built-ins, and working when loaded as a module and given a WebSocket constructor.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';

import { repoRoot, startTestServer } from '../helpers/server.js';

type ClientModule = typeof import('../../lib/client/index.js');

const source = path.join(repoRoot, 'test', 'lua', 'services', 'lapps', 'echo_lapps.lua');
const service = { name: 'echo_lapps', request_target: '/lapps', protocol: 'lapps', source };

t.test('the bundle builds and works', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lapps-bundle-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // .mjs: outside the package, a .js file would be taken for CommonJS.
  const outfile = path.join(dir, 'lapps-client.mjs');
  const script = path.join(repoRoot, 'scripts', 'bundle-client.mjs');
  const r = spawnSync(process.execPath, [script, '--outfile', outfile], { encoding: 'utf8' });
  t.equal(r.status, 0, 'the bundle script exits 0');
  if (r.status !== 0) t.comment(r.stderr);
  t.ok(existsSync(`${outfile}.map`), 'with a source map');
  const code = readFileSync(outfile, 'utf8');
  t.notMatch(code, /permessage-deflate|Sec-WebSocket-Key/, 'no ws code inside');
  t.notMatch(code, /from\s*"(node:)?[a-z_]+"|import\(\s*"/, 'no imports left: self-contained');
  t.ok(code.length < 100_000, `small (${code.length} bytes)`);

  const mod = (await import(pathToFileURL(outfile).href)) as ClientModule;
  const server = await startTestServer({ workers: 1, services: [service] });
  t.teardown(() => server.stop());
  // Node 20 has no global WebSocket and the bundle has no `ws`: it asks for a constructor.
  if (typeof (globalThis as { WebSocket?: unknown }).WebSocket !== 'function') {
    await t.rejects(mod.connect(server.url('/lapps')), /pass options\.WebSocket/);
  }
  const client = await mod.connect(server.url('/lapps'), { WebSocket });
  t.same(await client.request('echo', ['from the bundle', 1n]), ['from the bundle', 1]);
  await t.rejects(client.request('nope'), { name: 'LappsError', code: -32601 });
  await client.close();
});
