/**
 * wss after the handshake: TLS 1.3 connections move from OpenSSL to our own record layer
 * (native/src/security/tls-records.h). Real clients (ws, openssl s_client) must not notice:
 * echoes of every size and suite, many small frames, KeyUpdate both ways, close_notify; and
 * a record that fails (flipped byte, oversized, cut short) closes only its connection.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';

import t from 'tap';
import WebSocket from 'ws';

import { testPki } from '../helpers/pki.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { closed, echoes, openWss, until } from '../helpers/ws.js';
import {
  delay,
  encodeFrame,
  handshakeRequest,
  Op,
  randomKey,
  scaled,
} from '../helpers/raw-client.js';

const pki = testPki();

/** Waits until `n` connections have moved to the record layer since `before`. */
async function movedTo(server: TestServer, before: number, n = 1): Promise<void> {
  await until(
    () => server.counters().tls_record_layer - before >= n,
    scaled(5000),
    'the switch to our record layer',
  );
}

/** A TCP relay in front of the server that can cut, corrupt or inject client bytes. */
interface Relay {
  port: number;
  /** Flip the last byte of the next chunk from the client (a record's tag). */
  corruptNext: boolean;
  /** Forward client bytes in pieces of this many bytes, 1 ms apart (0: as they come). */
  pieces: number;
  /** The server-side sockets, to inject raw bytes. */
  upstream: net.Socket[];
  close(): void;
}

async function relay(target: number): Promise<Relay> {
  const r: Relay = {
    port: 0,
    corruptNext: false,
    pieces: 0,
    upstream: [],
    close: () => srv.close(),
  };
  const srv = net.createServer((down) => {
    const up = net.connect(target, '127.0.0.1');
    up.setNoDelay(true);
    r.upstream.push(up);
    let chain = Promise.resolve();
    down.on('data', (d: Buffer) => {
      const data = Buffer.from(d);
      if (r.corruptNext) {
        r.corruptNext = false;
        data[data.length - 1] = (data[data.length - 1] ?? 0) ^ 0x01;
      }
      const size = r.pieces;
      chain = chain.then(async () => {
        if (!size) {
          up.write(data);
          return;
        }
        for (let i = 0; i < data.length; i += size) {
          up.write(data.subarray(i, i + size));
          await delay(1);
        }
      });
    });
    up.on('data', (d: Buffer) => down.write(d));
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  r.port = (srv.address() as net.AddressInfo).port;
  return r;
}

t.test('ws over each TLS 1.3 suite: echoes of every size after the switch', async (t) => {
  const server = await startTestServer({ tls: true });
  t.teardown(() => server.stop());
  for (const suite of [
    'TLS_AES_128_GCM_SHA256',
    'TLS_AES_256_GCM_SHA384',
    'TLS_CHACHA20_POLY1305_SHA256',
  ]) {
    const before = server.counters().tls_record_layer;
    const ws = await openWss(server.url(), { ciphers: suite, minVersion: 'TLSv1.3' });
    await movedTo(server, before);
    t.ok(await echoes(ws, 'hello ' + suite), `${suite}: text`);
    t.ok(await echoes(ws, Buffer.alloc(0)), `${suite}: empty`);
    const big = Buffer.alloc(3 << 20);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
    t.ok(await echoes(ws, big), `${suite}: 3 MiB across many records`);
    // Many small frames at once: gathered into few records each way, all in order.
    const got: string[] = [];
    const all = new Promise<void>((resolve) =>
      ws.on('message', (d: WebSocket.RawData) => {
        got.push(d.toString());
        if (got.length === 2000) resolve();
      }),
    );
    for (let i = 0; i < 2000; ++i) ws.send(`m${i}`);
    await all;
    ws.removeAllListeners('message');
    t.same(
      got,
      Array.from({ length: 2000 }, (_, i) => `m${i}`),
      `${suite}: 2000 frames in order`,
    );
    ws.close(1000);
    t.equal((await closed(ws)).code, 1000, `${suite}: clean close (our close_notify after it)`);
  }
  t.equal(server.counters().tls_record_errors, 0, 'no record failed');
});

t.test('TLS 1.2 stays on OpenSSL and still echoes', async (t) => {
  const server = await startTestServer({ tls: true });
  t.teardown(() => server.stop());
  const before = server.counters().tls_record_layer;
  const ws = await openWss(server.url(), { maxVersion: 'TLSv1.2' });
  t.ok(await echoes(ws, Buffer.alloc(100_000, 3)), 'echo');
  t.equal(server.counters().tls_record_layer, before, 'not moved');
  ws.close();
});

t.test('records cut into 100-byte pieces across reads', async (t) => {
  const server = await startTestServer({ tls: true });
  t.teardown(() => server.stop());
  const r = await relay(server.port);
  t.teardown(() => r.close());
  const before = server.counters().tls_record_layer;
  const ws = await openWss(`wss://127.0.0.1:${r.port}/echo`);
  await movedTo(server, before);
  r.pieces = 100;
  t.ok(await echoes(ws, Buffer.alloc(40_000, 9)), 'a message over three records, in pieces');
  t.ok(await echoes(ws, 'small'), 'then a small one');
  ws.close();
});

t.test('a flipped byte, an oversized record, a cut record: that connection only', async (t) => {
  const server = await startTestServer({ tls: true });
  t.teardown(() => server.stop());
  const r = await relay(server.port);
  t.teardown(() => r.close());
  const bystander = await openWss(server.url());
  const errorsBefore = server.counters().tls_record_errors;

  const open = async (): Promise<WebSocket> => {
    const before = server.counters().tls_record_layer;
    const ws = await openWss(`wss://127.0.0.1:${r.port}/echo`);
    ws.on('error', () => {});
    await movedTo(server, before);
    t.ok(await echoes(ws, 'first'), 'echo before the attack');
    return ws;
  };

  // Flipped: the tag no longer matches.
  let ws = await open();
  r.corruptNext = true;
  let done = closed(ws, scaled(5000));
  ws.send('tampered');
  t.equal((await done).code, 1006, 'tampered record: closed');

  // Oversized: a header announcing more than 2^14 + 256 bytes.
  ws = await open();
  done = closed(ws, scaled(5000));
  r.upstream[r.upstream.length - 1]!.write(Buffer.from([23, 3, 3, 0x41, 0x01, 0, 0, 0]));
  t.equal((await done).code, 1006, 'oversized record: closed');

  // Unprotected: a ChangeCipherSpec after the handshake.
  ws = await open();
  done = closed(ws, scaled(5000));
  r.upstream[r.upstream.length - 1]!.write(Buffer.from([20, 3, 3, 0, 1, 1]));
  t.equal((await done).code, 1006, 'plaintext record: closed');

  // Cut short: half a record, then FIN.
  ws = await open();
  done = closed(ws, scaled(5000));
  const up = r.upstream[r.upstream.length - 1]!;
  up.write(Buffer.from([23, 3, 3, 0, 40, 1, 2, 3]));
  up.end();
  await done;
  t.pass('cut record: closed');

  await until(
    () => server.counters().tls_record_errors - errorsBefore >= 3,
    scaled(2000),
    'the failed records counted',
  );
  t.ok(await echoes(bystander, 'still here'), 'the other connection is served');
  const again = await openWss(server.url());
  t.ok(await echoes(again, 'new one'), 'new connections are served');
  again.close();
  bystander.close();
});

t.test('openssl s_client: KeyUpdate both ways (k, K) after the switch', async (t) => {
  const server = await startTestServer({ tls: true });
  t.teardown(() => server.stop());
  const before = server.counters().tls_record_layer;
  const child = spawn('openssl', [
    's_client',
    '-connect',
    `127.0.0.1:${server.port}`,
    '-servername',
    'localhost',
    '-CAfile',
    pki.ca,
    '-tls1_3',
  ]);
  t.teardown(() => child.kill());
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
  child.stderr.on('data', (b: Buffer) => (out += b.toString('latin1')));
  await until(() => out.includes('Verify return code'), scaled(10_000), 's_client handshake');
  child.stdin.write(handshakeRequest({ key: randomKey(), host: `localhost:${server.port}` }));
  await until(() => out.includes('101 Switching'), scaled(10_000), 'the 101');
  await movedTo(server, before);
  const echo = async (payload: string): Promise<void> => {
    child.stdin.write(encodeFrame({ opcode: Op.Text, payload, mask: true }));
    await until(() => out.includes(payload), scaled(10_000), `the echo of ${payload}`);
  };
  await echo('before-update');
  // s_client takes a line that starts with "k" (or "K": update_requested) as its command.
  child.stdin.write('k\n');
  await delay(200);
  await echo('after-k-update');
  child.stdin.write('K\n');
  await delay(200);
  await echo('after-K-update');
  await echo('and-once-more');
  t.match(out, /KEYUPDATE/, 's_client sent its KeyUpdates');
  t.notMatch(out, /error|alert/i, 'no TLS error on the client');
  t.equal(server.counters().tls_record_errors, 0, 'none on the server');
});
