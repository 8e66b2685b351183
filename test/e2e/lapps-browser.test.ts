/**
 * A LAppS browser client of the classic kind (cbor.js and a bare WebSocket, no request ids,
 * examples/lapps-home/www/index.html) in headless Chromium against the unmodified
 * echo_lapps and time_broadcast services of examples/lapps-home.
 */
import t from 'tap';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { readLappsHome } from '../../lib/config/lapps-compat.js';
import { createLogger } from '../../lib/log.js';
import { startServer } from '../../lib/server.js';
import { startStaticServer } from '../../lib/static.js';
import { repoRoot } from '../helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
const home = path.join(repoRoot, 'examples', 'lapps-home');

t.test('the classic LAppS page talks to echo_lapps and gets time broadcasts', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(`${CHROMIUM} missing: apt-get install -y chromium`);
    return;
  }
  const { config } = readLappsHome(home, {});
  config.listeners = [{ host: '127.0.0.1', port: 0 }];
  // Only what the page needs: echo_lapps and its dependency time_broadcast.
  config.services = config.services.filter((s) =>
    ['echo_lapps', 'time_broadcast'].includes(s.name),
  );
  const server = await startServer(config, {
    logger: createLogger({ level: 'error', json: false }, process.stderr),
  });
  t.teardown(() => server.stop());

  // The page and cbor.js (the npm package of the library LAppS's pages used).
  const www = mkdtempSync(path.join(os.tmpdir(), 'lapps-www-'));
  t.teardown(() => rmSync(www, { recursive: true, force: true }));
  copyFileSync(path.join(home, 'www', 'index.html'), path.join(www, 'index.html'));
  copyFileSync(
    path.join(repoRoot, 'node_modules', 'cbor-js', 'cbor.js'),
    path.join(www, 'cbor.js'),
  );
  const files = await startStaticServer({ dir: www, host: '127.0.0.1', port: 0 });
  t.teardown(() => files.close());

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  page.on('pageerror', (err) => t.fail(`page error: ${err.message}`));
  await page.goto(`${files.url}?port=${server.ports[0]}`);
  await page.waitForFunction(() => document.getElementById('echo')!.textContent !== '-');
  const echo = JSON.parse((await page.textContent('#echo'))!) as unknown;
  t.same(echo, { cid: 0, status: 1, result: ['hello', 42, { nested: [1, 2] }] }, 'echo answer');
  await page.waitForFunction(() => document.getElementById('time')!.textContent !== '-', null, {
    timeout: 3000,
  });
  const ms = Number(await page.textContent('#time'));
  t.ok(Math.abs(ms - Date.now()) < 5000, 'a time broadcast on channel 1000');
});
