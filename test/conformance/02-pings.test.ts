/**
 * Autobahn 2.x (pings and pongs, RFC 6455 §5.5.2-5.5.3): every ping is answered by a pong
 * with the same payload, pongs nobody asked for are ignored, and control frames over 125
 * bytes or fragmented fail the connection with 1002.
 */
import t from 'tap';

import { startTestServer } from '../helpers/server.js';
import {
  describeFrame,
  encodeFrame,
  expectNormalClose,
  expectServerClose,
  Op,
  RawClient,
  type Asserts,
} from '../helpers/raw-client.js';

const server = await startTestServer();
t.teardown(() => server.stop());

async function expectPong(t: Asserts, c: RawClient, payload: Buffer | string): Promise<void> {
  const want = typeof payload === 'string' ? Buffer.from(payload) : payload;
  try {
    const f = await c.nextFrame();
    t.equal(f.opcode, Op.Pong, `pong received (${describeFrame(f)})`);
    t.ok(f.payload.equals(want), `pong payload is the ping's (${want.length} bytes)`);
  } catch (e) {
    t.fail(`no pong: ${(e as Error).message}`);
  }
}

t.test('2.1 ping without payload', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Ping });
  await expectPong(t, c, '');
  await expectNormalClose(t, c);
});

t.test('2.2 ping with a small text payload', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Ping, payload: 'Hello, world!' });
  await expectPong(t, c, 'Hello, world!');
  await expectNormalClose(t, c);
});

t.test('2.3 ping with a small binary payload', async (t) => {
  const c = await RawClient.connect(server.port);
  const payload = Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]);
  c.send({ opcode: Op.Ping, payload });
  await expectPong(t, c, payload);
  await expectNormalClose(t, c);
});

t.test('2.4 ping with a 125-byte binary payload', async (t) => {
  const c = await RawClient.connect(server.port);
  const payload = Buffer.alloc(125, 0xfe);
  c.send({ opcode: Op.Ping, payload });
  await expectPong(t, c, payload);
  await expectNormalClose(t, c);
});

t.test('2.5 ping with a 126-byte payload fails with 1002', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Ping, payload: Buffer.alloc(126, 0xfe) });
  await expectServerClose(t, c, 1002);
});

t.test('2.5 (more) control frames over 125 bytes fail with 1002', async (t) => {
  for (const [opcode, size, form] of [
    [Op.Ping, 65536, undefined],
    [Op.Pong, 126, undefined],
    [Op.Close, 126, undefined],
    [Op.Ping, 10, 16],
    [Op.Pong, 10, 64],
  ] as const) {
    const c = await RawClient.connect(server.port);
    const payload = Buffer.alloc(size, 0x41);
    if (opcode === Op.Close) payload.writeUInt16BE(1000);
    c.send({ opcode, payload, lengthForm: form });
    // A 16/64-bit length on a control frame is itself a >125 length field (§5.5).
    await expectServerClose(t, c, 1002);
  }
});

t.test('2.6 ping with a 125-byte payload sent in chops of 1 byte', async (t) => {
  const c = await RawClient.connect(server.port);
  const payload = Buffer.alloc(125, 0xfe);
  await c.writeChopped(encodeFrame({ opcode: Op.Ping, payload }), 1, 1);
  await expectPong(t, c, payload);
  await expectNormalClose(t, c);
});

t.test('2.7 unsolicited pong without payload is ignored', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Pong });
  await expectNormalClose(t, c);
});

t.test('2.8 unsolicited pong with payload is ignored', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Pong, payload: 'unsolicited pong payload' });
  await expectNormalClose(t, c);
});

t.test('2.9 unsolicited pong, then ping: only the ping is answered', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Pong, payload: 'unsolicited pong payload' });
  c.send({ opcode: Op.Ping, payload: 'ping payload' });
  await expectPong(t, c, 'ping payload');
  await expectNormalClose(t, c);
});

t.test('2.10 ten pings in a row, each answered in order', async (t) => {
  const c = await RawClient.connect(server.port);
  const payloads = Array.from({ length: 10 }, (_, i) => `payload-${i}`);
  c.send(...payloads.map((payload) => ({ opcode: Op.Ping, payload })));
  for (const p of payloads) await expectPong(t, c, p);
  await expectNormalClose(t, c);
});

t.test('2.11 ten pings in a row, sent in chops of 1 byte', async (t) => {
  const c = await RawClient.connect(server.port);
  const payloads = Array.from({ length: 10 }, (_, i) => `payload-${i}`);
  const bytes = Buffer.concat(payloads.map((payload) => encodeFrame({ opcode: Op.Ping, payload })));
  await c.writeChopped(bytes, 1);
  for (const p of payloads) await expectPong(t, c, p);
  await expectNormalClose(t, c);
});

t.test('2.x fragmented ping (FIN=0) fails with 1002', async (t) => {
  for (const payload of ['', 'fragment']) {
    const c = await RawClient.connect(server.port);
    c.send({ opcode: Op.Ping, payload, fin: false });
    await expectServerClose(t, c, 1002);
  }
});

t.test('2.x fragmented pong (FIN=0) fails with 1002', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Pong, payload: 'fragment', fin: false });
  await expectServerClose(t, c, 1002);
});

t.test('2.x a ping right after a message: both the echo and the pong arrive', async (t) => {
  // RFC 6455 does not order a pong against a reply produced by the application.
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Text, payload: 'first' }, { opcode: Op.Ping, payload: 'then' });
  const got = [await c.nextFrame(), await c.nextFrame()].map(
    (f) => `${f.opcode}:${f.fin}:${f.payload.toString()}`,
  );
  t.same(got.sort(), [`${Op.Text}:true:first`, `${Op.Pong}:true:then`].sort());
  await expectNormalClose(t, c);
});

t.test('no error logged', async (t) => {
  t.same(server.errors(), []);
});
