/**
 * The chat example end to end: lapps serves services/chat (LAppS protocol, rooms as
 * broadcast channels, a standalone server-time service) and, with its `static` option, the
 * page, the browser client bundle and development tokens (POST /token); two headless
 * Chromium pages sign in, join a room and talk as the nicks in their tokens; pages with an
 * expired or forged token, or a nick the issuer refuses, say why they are not signed in.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Page } from 'playwright-core';

import { normalizeConfig } from '../../lib/config/load.js';
import { issueToken, readSecretFile, signHs256 } from '../../lib/dev-token.js';
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
  // The example's own config, on free ports, with its secret in a temporary file (the
  // service finds it through CHAT_SECRET_FILE) so the test leaves services/chat alone.
  const raw = JSON.parse(readFileSync(path.join(chatDir, 'lapps.json'), 'utf8')) as {
    listeners: { host: string; port: number }[];
    static: { port: number; dev_tokens: { secret_file: string; audience: string } };
  };
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'lapps-chat-e2e-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  raw.listeners[0]!.port = 0;
  raw.static.port = 0;
  t.equal(raw.static.dev_tokens.audience, 'chat', 'the example issues tokens for the chat');
  raw.static.dev_tokens.secret_file = path.join(tmp, 'dev-secret.txt');
  process.env.CHAT_SECRET_FILE = raw.static.dev_tokens.secret_file;
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
    await page.waitForFunction((n) => document.body.dataset.user === n, nick);
    t.equal(await page.textContent('#state'), 'open', `${nick} signed in`);
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

  // Signing in through the form, as a user would.
  const carol = await browser.newPage();
  carol.on('pageerror', (err) => t.fail(`carol: page error ${err.message}`));
  await carol.goto(`${staticUrl}?ws=${encodeURIComponent(wsUrl)}&room=e2e`);
  await carol.fill('#nick', 'carol');
  await carol.click('#signin button');
  await carol.waitForFunction(() => document.body.dataset.user === 'carol');
  await carol.click('#join');
  await alice.waitForFunction(() =>
    document.getElementById('log')!.textContent!.includes('carol joined'),
  );
  t.pass('the sign-in form works');

  // Refusals, each shown on the page: the service's reason, or the issuer's.
  const secret = readSecretFile(raw.static.dev_tokens.secret_file);
  const expired = issueToken({
    secret,
    sub: 'eve',
    audience: 'chat',
    ttlS: 600,
    now: Date.now() / 1000 - 3600,
  }).token;
  const forged = signHs256({ sub: 'eve', aud: 'chat' }, Buffer.alloc(32, 7));
  const otherAudience = issueToken({ secret, sub: 'eve', audience: 'admin', ttlS: 600 }).token;
  const cases: [string, string, RegExp][] = [
    ['an expired token', `token=${expired}`, /^Not signed in: token refused: expired/],
    ['a forged token', `token=${forged}`, /^Not signed in: token refused: bad signature/],
    ['another audience', `token=${otherAudience}`, /^Not signed in: token refused: audience/],
    ['a garbage token', 'token=garbage', /^Not signed in: token refused: malformed/],
    [
      'a nick the issuer refuses',
      `nick=${'x'.repeat(33)}`,
      /^Not signed in: the token issuer said 400: sub must be 1 to 32 bytes/,
    ],
    ['a control character', 'nick=a%07b', /^Not signed in: the token issuer said 400: .*control/],
  ];
  for (const [what, query, why] of cases) {
    const eve = await browser.newPage();
    eve.on('pageerror', (err) => t.fail(`${what}: page error ${err.message}`));
    await eve.goto(`${staticUrl}?ws=${encodeURIComponent(wsUrl)}&room=e2e&${query}`);
    await eve.waitForFunction(() => document.body.dataset.refused !== undefined);
    t.match(await eve.textContent('#refused'), why, `${what}: the page says why`);
    t.equal(await eve.isDisabled('#join'), true, `${what}: joining is not offered`);
    t.equal(await eve.textContent('#state'), 'signed out', `${what}: signed out`);
    if (what === 'an expired token') {
      // Signing in again (a fresh token from the issuer) works on the same page.
      await eve.fill('#nick', 'eve');
      await eve.click('#signin button');
      await eve.waitForFunction(() => document.body.dataset.user === 'eve');
      t.equal(await eve.textContent('#refused'), '', 'signed in after all: the message goes');
    }
    await eve.close();
  }
  t.notOk(
    /(eve|x{33}) joined/.test((await alice.textContent('#log'))!),
    'none of them reached the room',
  );

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
  // Its /token is not there (no dev_tokens): the mallory page first gets a token here.
  const malloryToken = issueToken({ secret, sub: 'mallory', audience: 'chat', ttlS: 600 }).token;
  await mallory.goto(
    `${foreign.url}?ws=${encodeURIComponent(wsUrl)}&room=e2e&token=${malloryToken}`,
  );
  const deadline = Date.now() + 10_000;
  while (server.counters().origin_refused === refusedBefore && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(server.counters().origin_refused > refusedBefore, "the foreign page's handshake got 403");
  t.not(await mallory.textContent('#state'), 'open', 'and it never connected');
  await mallory.waitForFunction(() => document.body.dataset.refused !== undefined);
  t.match(await mallory.textContent('#refused'), /^Not signed in: cannot connect/, 'it says so');
  t.notOk((await alice.textContent('#log'))!.includes('mallory'), 'nothing reached the room');
});
