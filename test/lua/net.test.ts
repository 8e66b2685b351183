/**
 * Outbound sockets from Lua services against real servers on 127.0.0.1: lapps.websocket
 * (ws:// and wss:// with certificate verification), lapps.tcp (plain and TLS), LAppS's
 * callback-style cws in a reactive service and in a standalone run() loop.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { WebSocketServer } from 'ws';

import { repoRoot, startTestServer } from '../helpers/server.js';
import { ask, openWs, until } from '../helpers/ws.js';

const dir = path.join(repoRoot, 'test', 'lua', 'services', 'runtime');
const netclient = {
  name: 'netclient',
  request_target: '/net',
  source: path.join(dir, 'netclient.lua'),
  preload: ['cws'],
  instances: 1,
};

const tmp = mkdtempSync(path.join(os.tmpdir(), 'lapps-net-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const keyFile = path.join(tmp, 'key.pem');
const certFile = path.join(tmp, 'cert.pem');
execFileSync('openssl', [
  'req',
  '-x509',
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:prime256v1',
  '-nodes',
  '-keyout',
  keyFile,
  '-out',
  certFile,
  '-days',
  '1',
  '-subj',
  '/CN=localhost',
  '-addext',
  'subjectAltName=DNS:localhost,IP:127.0.0.1',
]);
const key = readFileSync(keyFile);
const cert = readFileSync(certFile);

function echoWss(server?: https.Server): Promise<WebSocketServer> {
  return new Promise((resolve) => {
    const wss: WebSocketServer = server
      ? new WebSocketServer({ server })
      : new WebSocketServer({ host: '127.0.0.1', port: 0 }, () => resolve(wss));
    wss.on('connection', (s) => s.on('message', (d, isBinary) => s.send(d, { binary: isBinary })));
    if (server) server.listen(0, '127.0.0.1', () => resolve(wss));
  });
}

t.test('lapps.websocket over ws:// and wss://, with verification', async (t) => {
  const plain = await echoWss();
  const httpsServer = https.createServer({ key, cert });
  const secure = await echoWss(httpsServer);
  t.teardown(() => {
    plain.close();
    secure.close();
    httpsServer.close();
  });
  const plainPort = (plain.address() as net.AddressInfo).port;
  const securePort = (httpsServer.address() as net.AddressInfo).port;
  const server = await startTestServer({ workers: 1, services: [netclient] });
  t.teardown(() => server.stop());
  const ws = await openWs(server.url('/net'));
  t.equal(
    await ask(ws, `ws ws://127.0.0.1:${plainPort}/`),
    'ws hello 1 3 2 nil closed: 1000',
    'text and binary echoed, then closed',
  );
  const refused = await ask(ws, `ws wss://localhost:${securePort}/`);
  t.match(refused, /^connect failed: .*certificate/i, 'self-signed certificate refused by default');
  t.equal(await ask(ws, `ca ${certFile}`), 'ca set');
  t.equal(
    await ask(ws, `ws wss://localhost:${securePort}/`),
    'ws hello 1 3 2 nil closed: 1000',
    'wss with the CA trusted',
  );
  t.equal(await ask(ws, `wstimeout ws://127.0.0.1:${plainPort}/`), 'nil timeout');
  const closedPort = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  t.match(await ask(ws, `ws ws://127.0.0.1:${closedPort}/`), /^connect failed: .*refused/i);
  t.equal(
    await ask(ws, 'ws http://x/'),
    "connect failed: unsupported URL scheme 'http' (expected ws or wss)",
  );
  t.same(server.errors(), []);
  ws.close();
});

t.test('lapps.tcp, plain and TLS', async (t) => {
  const plain = net.createServer((s) => s.pipe(s));
  const secure = tls.createServer({ key, cert }, (s) => s.pipe(s));
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    plain.close();
    secure.close();
  });
  const server = await startTestServer({ workers: 1, services: [netclient] });
  t.teardown(() => server.stop());
  const ws = await openWs(server.url('/net'));
  const p1 = (plain.address() as net.AddressInfo).port;
  const p2 = (secure.address() as net.AddressInfo).port;
  t.equal(await ask(ws, `tcp 127.0.0.1 ${p1}`), 'tcp ping');
  t.match(await ask(ws, `tcp 127.0.0.1 ${p2} tls`), /^connect failed/, 'untrusted TLS refused');
  await ask(ws, `ca ${certFile}`);
  t.equal(await ask(ws, `tcp 127.0.0.1 ${p2} tls`), 'tcp ping');
  t.same(server.errors(), []);
  ws.close();
});

t.test('cws callbacks in a reactive service, ws:// and wss://', async (t) => {
  const plain = await echoWss();
  const httpsServer = https.createServer({ key, cert });
  const secure = await echoWss(httpsServer);
  t.teardown(() => {
    plain.close();
    secure.close();
    httpsServer.close();
  });
  const port = (plain.address() as net.AddressInfo).port;
  const securePort = (httpsServer.address() as net.AddressInfo).port;
  const server = await startTestServer({ workers: 1, services: [netclient] });
  t.teardown(() => server.stop());
  const ws = await openWs(server.url('/net'));
  t.equal(await ask(ws, `cws ws://127.0.0.1:${port}/`), 'cws one:1 two:2');
  const got: string[] = [];
  const collect = (d: unknown): number => got.push(String(d));
  ws.on('message', collect);
  ws.send(`cws wss://localhost:${securePort}/`);
  await until(() => got.length === 2, 5000, 'onerror and onclose');
  ws.off('message', collect);
  t.match(got[0], /^cws error .*certificate/i, 'onerror names the verification failure');
  t.equal(got[1], 'cws ', 'then onclose');
  await ask(ws, `ca ${certFile}`);
  t.equal(await ask(ws, `cws wss://localhost:${securePort}/`), 'cws one:1 two:2', 'wss');
  t.same(server.errors(), []);
  ws.close();
});

t.test('cws handlers are numbers, as in LAppS: concatenated, table keys, sent to', async (t) => {
  const plain = await echoWss();
  t.teardown(() => plain.close());
  const port = (plain.address() as net.AddressInfo).port;
  const server = await startTestServer({
    workers: 1,
    services: [
      {
        name: 'cws_lapps',
        request_target: '/cws',
        source: path.join(dir, 'cws_lapps.lua'),
        preload: ['cws'],
        instances: 1,
      },
    ],
  });
  t.teardown(() => server.stop());
  const ws = await openWs(server.url('/cws'));
  const answer = await ask(ws, `open ws://127.0.0.1:${port}/ 3`);
  const fields = Object.fromEntries(
    answer.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  t.same(fields, {
    types: 'number',
    keys: '3',
    counts: '3,3,3',
    stale: 'cws:send: closed',
    madeup: 'cws:send: no such socket',
    fraction: 'cws:send: no such socket',
    foreign: 'cws:send: no such socket',
    closeunknown: 'cws:close: no such socket',
    misuse: "bad argument #2 to '?' (cws handler expected, got string)",
    log: '',
  });
  t.same(server.errors(), []);
  ws.close();
});

t.test('cws driven by eventLoop() in a standalone run()', async (t) => {
  const plain = await echoWss();
  t.teardown(() => plain.close());
  const port = (plain.address() as net.AddressInfo).port;
  process.env.LAPPS_TEST_CWS_URL = `ws://127.0.0.1:${port}/`;
  t.teardown(() => delete process.env.LAPPS_TEST_CWS_URL);
  const server = await startTestServer({
    workers: 1,
    services: [
      {
        name: 'cws_standalone',
        standalone: true,
        source: path.join(dir, 'cws_standalone.lua'),
        preload: ['cws'],
      },
    ],
  });
  await until(
    () => server.events.some((e) => e.message === 'cws_standalone received 200'),
    5000,
    '200 messages',
  );
  t.equal(plain.clients.size, 20, '20 connections open');
  await server.stop();
  t.same(server.errors(), []);
});
