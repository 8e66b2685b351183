/**
 * The chat example end to end: lapps serves services/chat (LAppS protocol, rooms as
 * broadcast channels, a standalone server-time service) and, with its `static` option, the
 * page and the browser client bundle; two headless Chromium pages join a room and talk.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Page } from 'playwright-core';

import { normalizeConfig } from '../../lib/config/load.js';
import { startServer } from '../../lib/server.js';
import { createLogger } from '../../lib/log.js';
import { startStaticServer } from '../../lib/static.js';
import { repoRoot } from '../helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
const chatDir = path.join(repoRoot, 'services', 'chat');

t.test('two browser pages chat through lapps', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(`${CHROMIUM} missing: apt-get install -y chromium`);
    return;
  }
  // The example's own config, on free ports.
  const raw = JSON.parse(readFileSync(path.join(chatDir, 'lapps.json'), 'utf8')) as {
    listeners: { host: string; port: number }[];
    static: { port: number };
  };
  raw.listeners[0]!.port = 0;
  raw.static.port = 0;
  const config = normalizeConfig(raw, { file: 'lapps.json', baseDir: chatDir });
  const server = await startServer(config, {
    logger: createLogger({ level: 'error', json: false }, process.stderr),
  });
  t.teardown(() => server.stop());
  const staticUrl = server.staticUrl;
  t.ok(staticUrl, 'static files served');
  const wsUrl = `ws://127.0.0.1:${server.ports[0]}/chat`;

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  t.teardown(() => browser.close());

  const open = async (nick: string): Promise<Page> => {
    const page = await browser.newPage();
    page.on('pageerror', (err) => t.fail(`${nick}: page error ${err.message}`));
    await page.goto(`${staticUrl}?ws=${encodeURIComponent(wsUrl)}&room=e2e&nick=${nick}`);
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'open');
    await page.click('#join');
    await page.waitForFunction(() => document.body.dataset.joined === 'e2e');
    return page;
  };
  const alice = await open('alice');
  const bob = await open('bob');
  await alice.waitForFunction(() =>
    document.getElementById('log')!.textContent!.includes('bob joined'),
  );

  await alice.fill('#text', 'hello bob');
  await alice.press('#text', 'Enter');
  // Bob answers once he has read Alice's line (two sends at once may reach the room in
  // either order).
  await bob.waitForFunction(() =>
    document.getElementById('log')!.textContent!.includes('alice: hello bob'),
  );
  await bob.fill('#text', 'hi alice');
  await bob.press('#text', 'Enter');
  for (const page of [alice, bob]) {
    await page.waitForFunction(() => {
      const log = document.getElementById('log')!.textContent!;
      return log.includes('alice: hello bob') && log.includes('bob: hi alice');
    });
  }
  const bobLog = await bob.$$eval('#log p', (ps) => ps.map((p) => p.textContent));
  t.same(bobLog, ['you joined e2e', 'alice: hello bob', 'bob: hi alice'], "bob's view of the room");

  // The server-time channel ticks every second.
  await alice.waitForFunction(() => document.getElementById('time')!.textContent !== '-', null, {
    timeout: 3000,
  });
  t.pass('server time received');

  await bob.close();
  await alice.waitForFunction(() =>
    document.getElementById('log')!.textContent!.includes('bob left'),
  );
  t.pass('leaving is announced when a page goes away');

  // The same page served from another origin (another port: another site to a browser)
  // is refused by the Origin check: cross-site WebSocket hijacking (docs/security.md).
  const foreign = await startStaticServer({
    dir: path.join(chatDir, 'public'),
    host: '127.0.0.1',
    port: 0,
  });
  t.teardown(() => foreign.close());
  const refusedBefore = server.counters().origin_refused;
  const mallory = await browser.newPage();
  await mallory.goto(`${foreign.url}?ws=${encodeURIComponent(wsUrl)}&room=e2e&nick=mallory`);
  const deadline = Date.now() + 10_000;
  while (server.counters().origin_refused === refusedBefore && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(server.counters().origin_refused > refusedBefore, "the foreign page's handshake got 403");
  t.not(await mallory.textContent('#state'), 'open', 'and it never connected');
  t.notOk((await alice.textContent('#log'))!.includes('mallory'), 'nothing reached the room');
});
