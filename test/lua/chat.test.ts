/**
 * The chat example service (services/chat): signing in with a token in onConnect (the nick
 * comes from the token, not from the client), refusals (401 with the reason for clients
 * without Origin; for pages, error -32001 then close 4401 with the reason), rooms across
 * workers, argument checks, leave on disconnect, the server-time channel from its
 * standalone service.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';

import { encode } from '../../lib/client/codec.js';
import { issueToken, signHs256 } from '../../lib/dev-token.js';
import { connect, LappsClosedError, LappsError } from '../../lib/client/index.js';
import { requestMessage } from '../../lib/client/messages.js';
import { handshakeRequest, RawClient } from '../helpers/raw-client.js';
import { repoRoot, startTestServer, type TestServer } from '../helpers/server.js';
import { until } from '../helpers/ws.js';

const dir = path.join(repoRoot, 'services');
const services = [
  {
    name: 'chat_time',
    standalone: true,
    source: path.join(dir, 'chat-time', 'chat-time.lua'),
    preload: ['time'],
  },
  {
    name: 'chat',
    request_target: '/chat',
    protocol: 'lapps',
    instances: 2,
    source: path.join(dir, 'chat', 'chat.lua'),
    preload: ['murmur'],
    depends: ['chat_time'],
  },
];

// The service reads its secret from CHAT_SECRET_FILE (set before the server starts: the
// Lua instances read the environment of this process).
const tmp = mkdtempSync(path.join(os.tmpdir(), 'lapps-chat-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const secret = Buffer.from('a development secret of 40 bytes........');
const secretFile = path.join(tmp, 'secret.txt');
writeFileSync(secretFile, `${secret.toString()}\n`);
process.env.CHAT_SECRET_FILE = secretFile;

const token = (sub: string, extra: { now?: number; audience?: string } = {}): string =>
  issueToken({ secret, sub, audience: extra.audience ?? 'chat', ttlS: 600, ...extra }).token;

/** The refusals a token earns, from the wording of lapps.jwt.verify's errors. */
function badTokens(): [string, string | undefined, RegExp][] {
  const good = token('eve');
  const [h, c] = good.split('.') as [string, string];
  const forged = `${h}.${Buffer.from(JSON.stringify({ sub: 'admin', aud: 'chat' })).toString('base64url')}.${good.split('.')[2]}`;
  return [
    ['no token', undefined, /^no token: sign in first$/],
    ['an empty token', '', /^no token: sign in first$/],
    ['expired', token('eve', { now: Date.now() / 1000 - 3600 }), /^token refused: expired/],
    ['forged claims', forged, /^token refused: bad signature/],
    [
      'another secret',
      signHs256({ sub: 'eve', aud: 'chat' }, Buffer.alloc(32, 7)),
      /^token refused: bad signature/,
    ],
    ['another audience', token('eve', { audience: 'admin' }), /^token refused: audience mismatch/],
    ['garbage', 'not.a.token', /^token refused: malformed/],
    ['truncated', `${h}.${c}`, /^token refused: malformed/],
    ['alg none', `eyJhbGciOiJub25lIn0.${c}.`, /^token refused: (malformed|algorithm not allowed)/],
    ['6 KB of garbage', 'a'.repeat(6000), /^token refused: malformed/],
    [
      'a sub that is no nickname',
      signHs256({ sub: 'x'.repeat(40), aud: 'chat' }, secret),
      /^token refused: sub is not a nickname$/,
    ],
  ];
}

function chatUrl(server: TestServer, tok: string | undefined): string {
  return server.url(tok === undefined ? '/chat' : `/chat?token=${encodeURIComponent(tok)}`);
}

/** A `ws` WebSocket that sends an Origin header, as a browser page of `origin` would. */
function browserLike(origin: string) {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { headers: { Origin: origin } });
    }
  };
}

t.test('signing in, rooms, checks and the time channel', async (t) => {
  const server = await startTestServer({ workers: 2, services });
  t.teardown(() => server.stop());
  const a = await connect(chatUrl(server, token('ann')), { reconnect: false });
  const b = await connect(chatUrl(server, token('ben')), { reconnect: false });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  t.same(await a.request('whoami'), ['ann'], 'the nick is the token’s sub');

  const [cid] = (await a.request('join', ['r1'])) as [number];
  const seen: unknown[][] = [];
  a.subscribe(cid, (m) => seen.push(m));
  // A second parameter (the nick in the old protocol) changes nothing: the token decides.
  t.same(await b.request('join', ['r1', 'mallory']), [cid], 'same room, same channel');
  t.same(await b.request('say', ['r1', 'hello']), [true]);
  await until(() => seen.length === 2, 3000, 'messages');
  t.same(seen, [
    ['join', 'ben'],
    ['say', 'ben', 'hello'],
  ]);

  for (const [method, params, code] of [
    ['join', [], -32602],
    ['join', [''], -32602],
    ['join', ['x'.repeat(65)], -32602],
    ['say', ['other', 'hi'], -32602],
    ['say', ['r1', ''], -32602],
    ['nope', [], -32601],
  ] as [string, unknown[], number][]) {
    const err = await b.request(method, params).catch((e: unknown) => e);
    t.ok(
      err instanceof LappsError && err.code === code,
      `${method} ${JSON.stringify(params)}: ${code}`,
    );
  }

  const ticks: unknown[][] = [];
  a.subscribe(1, (m) => ticks.push(m), { method: 'time' });
  await until(() => ticks.length >= 1, 3000, 'server time');
  t.ok(typeof ticks[0]![0] === 'number' || typeof ticks[0]![0] === 'bigint', 'milliseconds');

  await b.close();
  await until(() => seen.some((m) => m[0] === 'leave'), 3000, 'leave');
  t.same(seen.at(-1), ['leave', 'ben'], 'a closed connection leaves its rooms');
  t.same(server.errors(), [], 'no error in the log');
});

t.test('without a valid token a client without Origin is refused: 401 and why', async (t) => {
  const server = await startTestServer({ workers: 2, services });
  t.teardown(() => server.stop());
  for (const [what, tok, why] of [
    ...badTokens(),
    ['twice', 'x&token=y', /^token given more than once$/] as [string, string, RegExp],
  ]) {
    const c = await RawClient.open(server.port);
    const target =
      tok === undefined
        ? '/chat'
        : what === 'twice'
          ? `/chat?token=${token('eve')}&token=${token('eve')}`
          : `/chat?token=${encodeURIComponent(tok)}`;
    c.write(handshakeRequest({ path: target }));
    const res = await c.readHttpResponse();
    t.equal(res.status, 401, `${what}: 401`);
    await c.waitEnd().catch(() => undefined);
    t.match(c.body().toString(), why, `${what}: the body says why`);
    c.destroy();
  }
  // A token too big for a request head (limits.max_header_size) never reaches onConnect.
  const huge = await RawClient.open(server.port);
  huge.write(handshakeRequest({ path: `/chat?token=${'a'.repeat(100_000)}` }));
  t.equal((await huge.readHttpResponse()).status, 431, '100 KB token: 431 before onConnect');
  huge.destroy();
  // The Node client reports it as a failed first connection.
  const err = await connect(chatUrl(server, undefined), { reconnect: false }).catch(
    (e: unknown) => e,
  );
  t.ok(err instanceof LappsClosedError, `the client cannot connect: ${String(err)}`);
  t.same(server.errors(), [], 'no error in the log');
});

t.test('a page with a bad token is let in to be told: -32001, then close 4401', async (t) => {
  const server = await startTestServer({ workers: 2, services });
  t.teardown(() => server.stop());
  const Page = browserLike(`http://127.0.0.1:${server.port}`);
  const watcher = await connect(chatUrl(server, token('wat')), { reconnect: false });
  t.teardown(() => watcher.close());
  const [cid] = (await watcher.request('join', ['lobby'])) as [number];
  const seen: unknown[][] = [];
  watcher.subscribe(cid, (m) => seen.push(m));

  for (const [what, tok, why] of badTokens()) {
    const client = await connect(chatUrl(server, tok), { reconnect: false, WebSocket: Page });
    t.teardown(() => client.close());
    const err = await client.request('join', ['lobby']).catch((e: unknown) => e);
    t.ok(err instanceof LappsError && err.code === -32001, `${what}: error -32001`);
    t.match((err as Error).message, why, `${what}: it says why`);
    await until(() => client.state === 'closed', 3000, `${what}: then closed by the server`);
  }
  t.same(seen, [], 'none of them reached the room');

  // The close code and reason, seen by a plain WebSocket.
  const ws = new Page(chatUrl(server, token('eve', { now: 1000 })));
  const closed = await new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('open', () => ws.send(encode(requestMessage('whoami', undefined, 1))));
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  t.equal(closed.code, 4401, 'close code 4401');
  t.match(closed.reason, /^token refused: expired/, 'the reason says why');

  // A page that asks nothing is closed after a few seconds all the same.
  const idle = new Page(chatUrl(server, undefined));
  const started = Date.now();
  const idleClose = await new Promise<{ code: number; reason: string }>((resolve) => {
    idle.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  t.same(idleClose, { code: 4401, reason: 'no token: sign in first' }, 'idle page closed');
  t.ok(Date.now() - started >= 4000, 'after the grace period');
  t.same(server.errors(), [], 'no error in the log');
});

t.test('without a usable secret the service refuses everyone: 503 naming the file', async (t) => {
  const missing = path.join(tmp, 'missing.txt');
  const short = path.join(tmp, 'short.txt');
  writeFileSync(short, 'only 20 bytes here..\n');
  for (const file of [missing, short]) {
    process.env.CHAT_SECRET_FILE = file;
    const server = await startTestServer({ workers: 1, services });
    const c = await RawClient.open(server.port);
    c.write(handshakeRequest({ path: `/chat?token=${token('ann')}` }));
    t.equal((await c.readHttpResponse()).status, 503, `${path.basename(file)}: 503`);
    await c.waitEnd().catch(() => undefined);
    t.equal(
      c.body().toString(),
      `the chat service has no token secret (${file})`,
      `${path.basename(file)}: says which file`,
    );
    c.destroy();
    await server.stop();
  }
  process.env.CHAT_SECRET_FILE = secretFile;
});
