/**
 * wss: echo with ws, Python websockets and openssl s_client; client certificates (mTLS);
 * SNI; minimum version; ALPN; certificates replaced while connections stay up; ws and wss
 * listeners side by side; broken TLS clients do not disturb anyone else.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

import t from 'tap';
import WebSocket from 'ws';

import { testPki } from '../helpers/pki.js';
import { startTestServer } from '../helpers/server.js';
import { closed, echoes, nextMessage, openWss, until } from '../helpers/ws.js';
import { encodeFrame, handshakeRequest, Op, randomKey, scaled } from '../helpers/raw-client.js';

const pki = testPki();

/** The certificate subject CN a TLS client sees for `servername`. */
function peerCn(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect(
      { port, host: '127.0.0.1', servername, rejectUnauthorized: false },
      () => {
        const cn = s.getPeerCertificate().subject?.CN;
        s.destroy();
        resolve(Array.isArray(cn) ? cn.join(',') : (cn ?? ''));
      },
    );
    s.once('error', reject);
  });
}

/** Resolves with the TLS error a connection attempt ends with, or 'connected'. */
function tlsOutcome(port: number, options: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({
      port,
      host: '127.0.0.1',
      ca: pki.caPem,
      servername: 'localhost',
      ...options,
    });
    s.once('secureConnect', () => {
      // With TLS 1.3 a refused client certificate is reported after the handshake: write
      // something and wait for the server's verdict.
      s.write(handshakeRequest({ key: randomKey(), host: `127.0.0.1:${port}` }));
      s.once('data', (b: Buffer) => {
        s.destroy();
        resolve(b.toString('latin1').startsWith('HTTP/1.1 101') ? 'connected' : 'unexpected');
      });
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    s.once('end', () => resolve('closed'));
  });
}

t.test('wss echo with ws: text, binary, 4 MiB, many clients, close', async (t) => {
  const server = await startTestServer({ tls: true });
  t.teardown(() => server.stop());
  t.match(server.url(), /^wss:/);
  const ws = await openWss(server.url());
  t.ok(await echoes(ws, 'hello over TLS κόσμε'), 'text');
  t.ok(await echoes(ws, Buffer.from([0, 1, 2, 255])), 'binary');
  const big = Buffer.alloc(4 << 20, 7);
  t.ok(await echoes(ws, big), '4 MiB message (many records, partial writes)');
  const end = closed(ws);
  ws.close(1000, 'done');
  t.equal((await end).code, 1000, 'close handshake over TLS');
  const many = await Promise.all(
    Array.from({ length: 40 }, async (_, i) => {
      const c = await openWss(server.url());
      const ok = await echoes(c, `client ${i}`);
      c.close();
      return ok;
    }),
  );
  t.equal(many.filter(Boolean).length, 40, '40 clients over 2 workers (hand-overs included)');
  t.equal(server.errors().length, 0, 'no errors logged');
});

t.test('wss: the handshake and frames in one TLS write are all served', async (t) => {
  const server = await startTestServer({ tls: true, workers: 2 });
  t.teardown(() => server.stop());
  // Several times: some land on an instance of the other worker (hand-over with TLS state).
  for (let i = 0; i < 8; ++i) {
    const s = tls.connect({
      port: server.port,
      host: '127.0.0.1',
      ca: pki.caPem,
      servername: 'localhost',
    });
    await new Promise((r) => s.once('secureConnect', r));
    const frames = [1, 2, 3].map((k) =>
      encodeFrame({ opcode: Op.Text, payload: `pipelined ${k}`, mask: true }),
    );
    s.write(
      Buffer.concat([
        Buffer.from(handshakeRequest({ key: randomKey(), host: 'localhost' })),
        ...frames,
      ]),
    );
    let got = '';
    s.on('data', (b: Buffer) => (got += b.toString('latin1')));
    await until(() => got.includes('pipelined 3'), scaled(5000), 'all three echoes');
    t.ok(got.startsWith('HTTP/1.1 101'), `connection ${i}: 101 then the echoes`);
    s.destroy();
  }
});

t.test('wss echo with Python websockets (ssl with the test CA)', async (t) => {
  const server = await startTestServer({ tls: true });
  t.teardown(() => server.stop());
  const py = `
import asyncio, ssl, sys, json
import websockets
async def main(url, ca):
    ctx = ssl.create_default_context(cafile=ca)
    async with websockets.connect(url, ssl=ctx, max_size=None) as ws:
        await ws.send("py over tls")
        a = await ws.recv()
        big = b"z" * (1 << 20)
        await ws.send(big)
        b = (await ws.recv()) == big
    print(json.dumps({"text": a, "big": b, "code": ws.close_code}))
asyncio.run(main(sys.argv[1], sys.argv[2]))
`;
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      '/usr/bin/python3',
      ['-c', py, server.url(), pki.ca],
      { timeout: 30_000 },
      (e, stdout, stderr) => (e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve(stdout)),
    ),
  );
  t.same(JSON.parse(out), { text: 'py over tls', big: true, code: 1000 });
});

t.test('openssl s_client: verified chain, ALPN http/1.1, a WebSocket echo', async (t) => {
  const server = await startTestServer({ tls: true });
  t.teardown(() => server.stop());
  const child = spawn('openssl', [
    's_client',
    '-connect',
    `127.0.0.1:${server.port}`,
    '-servername',
    'localhost',
    '-CAfile',
    pki.ca,
    '-verify_return_error',
    '-alpn',
    'http/1.1',
    '-ign_eof',
  ]);
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
  child.stderr.on('data', (b: Buffer) => (out += b.toString('latin1')));
  await until(() => out.includes('Verify return code'), scaled(10_000), 's_client handshake');
  child.stdin.write(handshakeRequest({ key: randomKey(), host: `localhost:${server.port}` }));
  child.stdin.write(encodeFrame({ opcode: Op.Text, payload: 'via s_client', mask: true }));
  await until(() => out.includes('via s_client'), scaled(10_000), 'the echo');
  child.kill();
  t.match(out, /Verify return code: 0 \(ok\)/, 'chain verified against the CA');
  t.match(out, /ALPN protocol: http\/1\.1/, 'ALPN selected http/1.1');
  t.match(out, /HTTP\/1\.1 101 Switching Protocols/, '101 over TLS');
});

t.test('ALPN: a client offering only h2 is refused; no ALPN is fine', async (t) => {
  const server = await startTestServer({ tls: true });
  t.teardown(() => server.stop());
  t.not(await tlsOutcome(server.port, { ALPNProtocols: ['h2'] }), 'connected', 'h2 only: refused');
  t.equal(await tlsOutcome(server.port, { ALPNProtocols: ['h2', 'http/1.1'] }), 'connected');
  t.equal(await tlsOutcome(server.port, {}), 'connected');
});

t.test('minimum version 1.3 refuses a TLS 1.2 client', async (t) => {
  const server = await startTestServer({
    tls: { cert: pki.serverCert, key: pki.serverKey, min_version: '1.3' },
  });
  t.teardown(() => server.stop());
  t.not(await tlsOutcome(server.port, { maxVersion: 'TLSv1.2' }), 'connected');
  t.equal(await tlsOutcome(server.port, { minVersion: 'TLSv1.3' }), 'connected');
  await until(() => server.counters().tls_handshakes_failed >= 1, scaled(2000), 'counted');
});

t.test('mTLS required: a CA-signed client certificate only', async (t) => {
  const server = await startTestServer({
    tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, client_cert: 'require' },
  });
  t.teardown(() => server.stop());
  const key = readFileSync(pki.clientKey);
  const cert = readFileSync(pki.clientCert);
  t.equal(await tlsOutcome(server.port, { key, cert }), 'connected', 'CA-signed: accepted');
  t.not(await tlsOutcome(server.port, {}), 'connected', 'no certificate: refused');
  t.not(
    await tlsOutcome(server.port, {
      key: readFileSync(pki.strangerKey),
      cert: readFileSync(pki.strangerCert),
    }),
    'connected',
    'unknown CA: refused',
  );
  const ws = await openWss(server.url(), { key, cert });
  t.ok(await echoes(ws, 'mutual'), 'echo with a client certificate');
  ws.close();
});

t.test('mTLS optional: no certificate is fine, a bad one is not', async (t) => {
  const server = await startTestServer({
    tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, client_cert: 'optional' },
  });
  t.teardown(() => server.stop());
  t.equal(await tlsOutcome(server.port, {}), 'connected');
  t.equal(
    await tlsOutcome(server.port, {
      key: readFileSync(pki.clientKey),
      cert: readFileSync(pki.clientCert),
    }),
    'connected',
  );
  t.not(
    await tlsOutcome(server.port, {
      key: readFileSync(pki.strangerKey),
      cert: readFileSync(pki.strangerCert),
    }),
    'connected',
  );
});

t.test('SNI picks the certificate by name, wildcards included', async (t) => {
  const server = await startTestServer({
    tls: {
      cert: pki.serverCert,
      key: pki.serverKey,
      certificates: [{ cert: pki.otherCert, key: pki.otherKey }],
    },
  });
  t.teardown(() => server.stop());
  t.equal(await peerCn(server.port, 'localhost'), 'localhost');
  t.equal(await peerCn(server.port, 'other.test'), 'other.test');
  t.equal(await peerCn(server.port, 'a.other.test'), 'other.test', 'wildcard');
  t.equal(await peerCn(server.port, 'unknown.test'), 'localhost', 'no match: the default');
  const ws = await openWss(`wss://127.0.0.1:${server.port}/echo`, {
    servername: 'other.test',
  } as WebSocket.ClientOptions);
  t.ok(await echoes(ws, 'sni'), 'echo through the SNI certificate');
  ws.close();
});

t.test('certificates replaced at runtime; open connections keep going', async (t) => {
  const server = await startTestServer({ tls: true });
  t.teardown(() => server.stop());
  const before = await openWss(server.url());
  t.equal(await peerCn(server.port, 'localhost'), 'localhost');
  server.reload({ tls: { cert: pki.otherCert, key: pki.otherKey } });
  // Each worker swaps its policy on its own loop: poll until both have.
  let seen = '';
  for (let i = 0; i < 50 && seen !== 'other.test,other.test'; ++i) {
    seen = `${await peerCn(server.port, 'localhost')},${await peerCn(server.port, 'localhost')}`;
  }
  t.equal(seen, 'other.test,other.test', 'new connections get the new certificate');
  t.ok(await echoes(before, 'still here'), 'a connection from before the reload still echoes');
  t.throws(
    () => server.reload({ tls: { cert: pki.otherCert, key: pki.serverKey } }),
    /key|match/i,
    'a key that does not match: reload refused',
  );
  t.equal(await peerCn(server.port, 'x'), 'other.test', 'after a refused reload nothing changed');
  t.throws(() => server.reload({ tls: false }), /tls cannot be switched/, 'wss cannot become ws');
  before.close();
});

t.test('ws and wss listeners side by side', async (t) => {
  const server = await startTestServer({
    listeners: [
      { host: '127.0.0.1', port: 0 },
      { host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } },
    ],
  });
  t.teardown(() => server.stop());
  const plain = new WebSocket(`ws://127.0.0.1:${server.ports[0]}/echo`);
  await new Promise((r) => plain.once('open', r));
  const reply = nextMessage(plain);
  plain.send('plain');
  t.equal(await reply, 'plain');
  const secure = await openWss(`wss://127.0.0.1:${server.ports[1]}/echo`);
  t.ok(await echoes(secure, 'secure'));
  plain.close();
  secure.close();
});

t.test('plain HTTP and garbage on a TLS port: dropped, counted, others served', async (t) => {
  const server = await startTestServer({ tls: true });
  t.teardown(() => server.stop());
  const ws = await openWss(server.url());
  for (const junk of [
    handshakeRequest({ key: randomKey(), host: 'x' }),
    Buffer.alloc(600, 0x16),
    Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3]),
  ]) {
    const s = net.connect({ port: server.port, host: '127.0.0.1' });
    s.on('error', () => {});
    s.resume(); // read the alert, so the reset is seen
    s.write(junk);
    await new Promise((r) => s.once('close', r));
  }
  await until(
    () => server.counters().tls_handshakes_failed >= 3,
    scaled(3000),
    'three failures counted',
  );
  t.pass('each was closed and counted');
  t.ok(await echoes(ws, 'unaffected'), 'an established client is still served');
  ws.close();
});
