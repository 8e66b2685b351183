/**
 * The access log (log.access, docs/config.md): one line per handshake outcome with its
 * status, reason, path, client, origin, duration and bytes, as text key=value pairs or as
 * JSON fields; off by default; repeated refusals from one address rate-limited; a refused
 * Origin named, with the config key that would let it in, in the line and in the 403 body.
 */
import net from 'node:net';
import { Writable } from 'node:stream';

import t from 'tap';

import { normalizeConfig } from '../../lib/config/load.js';
import { createLogger } from '../../lib/log.js';
import { startServer, type RunningServer } from '../../lib/server.js';
import { delay, handshakeRequest, randomKey, scaled } from '../helpers/raw-client.js';
import { echoSource, repoRoot, startTestServer } from '../helpers/server.js';

/** Sends `request` on a fresh socket; resolves with everything the server sent until close. */
function answer(port: number, request: string, holdOpen = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let text = '';
    const timer = setTimeout(() => reject(new Error('no answer')), scaled(8000));
    socket.on('error', () => {});
    socket.on('data', (b: Buffer) => {
      text += b.toString('latin1');
      if (holdOpen && text.includes('\r\n\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    if (request) socket.write(request);
  });
}

const ws = (extra: string[] = [], path = '/echo'): string =>
  handshakeRequest({ key: randomKey(), host: 'localhost', path, extra });

async function startLogged(
  json: boolean,
  extra: Record<string, unknown> = {},
): Promise<{ server: RunningServer; port: number; lines: () => string[] }> {
  let log = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      log += chunk.toString();
      done();
    },
  });
  const config = normalizeConfig(
    {
      listeners: [{ host: '127.0.0.1', port: 0 }],
      workers: 1,
      limits: { handshake_timeout_ms: scaled(300) },
      log: { level: 'info', json, access: true },
      services: [
        {
          name: 'echo',
          request_target: '/echo',
          source: echoSource,
          origins: ['https://app.example.com'],
        },
      ],
      ...extra,
    },
    { file: '<test>', baseDir: repoRoot },
  );
  const server = await startServer(config, { logger: createLogger(config.log, stream) });
  const lines = (): string[] =>
    log.split('\n').filter((l) => l.includes('[access]') || l.includes('"source":"access"'));
  return { server, port: server.ports[0] ?? 0, lines };
}

async function waitFor(n: number, lines: () => string[], ms = 4000): Promise<string[]> {
  for (let i = 0; i < ms / 20 && lines().length < n; ++i) await delay(scaled(20));
  return lines();
}

t.test('JSON: one line per outcome, values as JSON fields', async (t) => {
  const { server, port, lines } = await startLogged(true);
  t.teardown(() => server.stop());
  const ok = await answer(port, ws(['Origin: https://app.example.com']), true);
  t.match(ok, /^HTTP\/1\.1 101/);
  const notFound = await answer(port, ws([], '/nowhere?x=1'));
  t.match(notFound, /^HTTP\/1\.1 404/);
  const origin = await answer(port, ws(['Origin: http://localhost:5173']));
  t.match(origin, /^HTTP\/1\.1 403/);
  t.match(origin, /http:\/\/localhost:5173/, 'the 403 body names the origin');
  t.match(origin, /"origins" of service "echo"/, 'and the config key that would allow it');
  const bad = await answer(port, 'GET /echo HTTP/1.1\r\nHost: x\r\n\r\n');
  t.match(bad, /^HTTP\/1\.1 426/);
  const slow = await answer(port, 'GET /echo HTTP/1.1\r\n');
  t.match(slow, /^HTTP\/1\.1 408/);

  const entries = (await waitFor(5, lines)).map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(entries.length, 5, 'five outcomes, five lines');
  const [e101, e404, e403, e426, e408] = entries;
  t.match(e101, {
    level: 'info',
    source: 'access',
    msg: 'handshake 101',
    status: 101,
    path: '/echo',
    client: '127.0.0.1',
    origin: 'https://app.example.com',
  });
  t.type(e101?.port, 'number');
  t.type(e101?.duration_ms, 'number');
  t.ok(Number(e101?.bytes_in) > 100, 'bytes_in: the request');
  t.ok(Number(e101?.bytes_out) > 100, 'bytes_out: the 101 response');
  t.notOk('reason' in (e101 ?? {}), 'an accepted handshake has no reason');
  t.match(e404, { status: 404, path: '/nowhere?x=1', reason: 'no service at this path' });
  t.match(e403, {
    status: 403,
    origin: 'http://localhost:5173',
    reason: /http:\/\/localhost:5173.*"origins" of service "echo"/,
  });
  t.match(e426, { status: 426, path: '/echo' });
  t.match(e408, { status: 408, reason: 'handshake timeout' });
  t.ok(Number(e408?.duration_ms) >= scaled(300) - 20, 'duration: from accept to the answer');
});

t.test('text: key=value pairs after the message', async (t) => {
  const { server, port, lines } = await startLogged(false);
  t.teardown(() => server.stop());
  await answer(port, ws([], '/missing'));
  const [line] = await waitFor(1, lines);
  t.match(line, /INFO +\[access\] handshake 404 status=404 reason="no service at this path"/);
  t.match(line, /path=\/missing client=127\.0\.0\.1 port=\d+ duration_ms=\d+ bytes_in=\d+/);
});

t.test('behind a trusted proxy: the client it names', async (t) => {
  const { server, port, lines } = await startLogged(true, { trusted_proxies: ['127.0.0.0/8'] });
  t.teardown(() => server.stop());
  await answer(port, ws(['X-Forwarded-For: 203.0.113.44'], '/missing'));
  const [line] = await waitFor(1, lines);
  t.match(JSON.parse(line ?? '{}'), { client: '203.0.113.44', port: 0 });
});

t.test('a flood of refusals from one address: 10 lines, then one with the count', async (t) => {
  const { server, port, lines } = await startLogged(true);
  t.teardown(() => server.stop());
  for (let i = 0; i < 40; ++i) await answer(port, ws([], '/missing'));
  await delay(scaled(200));
  t.equal(lines().length, 10, 'ten lines for forty refusals');
  // Another address is not affected by 127.0.0.1's flood.
  const other = await new Promise<string>((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    let text = '';
    s.on('data', (b: Buffer) => (text += b.toString()));
    s.on('close', () => resolve(text));
    s.on('error', () => resolve(text));
    s.write(ws([], '/missing'));
  });
  t.match(other, /^HTTP\/1\.1 404/);
  const withOther = await waitFor(11, lines);
  t.match(JSON.parse(withOther[10] ?? '{}'), { client: '127.0.0.2', status: 404 });
  // The window (10 s) ends: one line with the count.
  const all = await waitFor(12, lines, 15000);
  const summary = JSON.parse(all[11] ?? '{}') as Record<string, unknown>;
  t.match(summary, { source: 'access', client: '127.0.0.1', suppressed: 30 });
  t.match(summary.msg, /30 more refused handshake\(s\) from 127\.0\.0\.1 not logged/);
});

t.test('off by default', async (t) => {
  const server = await startTestServer({ tls: false });
  t.teardown(() => server.stop());
  await answer(server.port, ws([], '/missing'));
  await answer(server.port, ws(), true);
  await delay(scaled(200));
  t.equal(server.events.filter((e) => e.source === 'access').length, 0, 'no access lines');
});
