/**
 * Autobahn 3.x (reserved bits, RFC 6455 §5.2): no extension is negotiated, so a frame
 * with any RSV bit set fails the connection with 1002. Frames before the bad one are
 * still handled (their echo arrives first); nothing after it is.
 */
import t from 'tap';

import { startTestServer } from '../helpers/server.js';
import {
  delay,
  encodeFrame,
  expectEcho,
  expectServerClose,
  Op,
  RawClient,
} from '../helpers/raw-client.js';

const server = await startTestServer();
t.teardown(() => server.stop());

t.test('3.1 text message with RSV = 1', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Text, payload: 'Hello, world!', rsv: 1 });
  await expectServerClose(t, c, 1002);
});

t.test('3.2 text, then text with RSV = 2, then ping: echo, then 1002, no pong', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(
    { opcode: Op.Text, payload: 'Hello, world!' },
    { opcode: Op.Text, payload: 'Hello, world!', rsv: 2 },
    { opcode: Op.Ping, payload: 'Hello, world!' },
  );
  await expectEcho(t, c, Op.Text, 'Hello, world!');
  await expectServerClose(t, c, 1002);
});

t.test('3.3 same with RSV = 3, frame by frame with sync', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Text, payload: 'Hello, world!' });
  await expectEcho(t, c, Op.Text, 'Hello, world!');
  c.send({ opcode: Op.Text, payload: 'Hello, world!', rsv: 3 });
  await delay(20);
  c.send({ opcode: Op.Ping, payload: 'Hello, world!' });
  await expectServerClose(t, c, 1002);
});

t.test('3.4 same with RSV = 4, sent in chops of 1 byte', async (t) => {
  const c = await RawClient.connect(server.port);
  const bytes = Buffer.concat([
    encodeFrame({ opcode: Op.Text, payload: 'Hello, world!' }),
    encodeFrame({ opcode: Op.Text, payload: 'Hello, world!', rsv: 4 }),
    encodeFrame({ opcode: Op.Ping, payload: 'Hello, world!' }),
  ]);
  await c.writeChopped(bytes, 1, 1);
  await expectEcho(t, c, Op.Text, 'Hello, world!');
  await expectServerClose(t, c, 1002);
});

t.test('3.5 binary message with RSV = 5', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Binary, payload: Buffer.from([0, 0xff, 0xfe, 0xfd]), rsv: 5 });
  await expectServerClose(t, c, 1002);
});

t.test('3.6 ping with RSV = 6', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Ping, payload: 'Hello, world!', rsv: 6 });
  await expectServerClose(t, c, 1002);
});

t.test('3.7 close with RSV = 7', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Close, payload: Buffer.from([0x03, 0xe8]), rsv: 7 });
  await expectServerClose(t, c, 1002);
});

const FRAMES = [
  ['text', { opcode: Op.Text, payload: 'reserved' }],
  ['binary', { opcode: Op.Binary, payload: Buffer.from([1, 2, 3]) }],
  ['ping', { opcode: Op.Ping, payload: 'reserved' }],
  ['pong', { opcode: Op.Pong, payload: 'reserved' }],
  ['close', { opcode: Op.Close, payload: Buffer.from([0x03, 0xe8]) }],
  ['empty text', { opcode: Op.Text }],
] as const;

for (const rsv of [1, 2, 3, 4, 5, 6, 7]) {
  t.test(`3.x RSV = ${rsv} on every frame type, alone and after a valid frame`, async (t) => {
    for (const [name, spec] of FRAMES) {
      const alone = await RawClient.connect(server.port);
      alone.send({ ...spec, rsv });
      await t.test(`${name} alone`, (t) => expectServerClose(t, alone, 1002));
      const after = await RawClient.connect(server.port);
      after.send({ opcode: Op.Binary, payload: 'valid first' }, { ...spec, rsv });
      await t.test(`${name} after a valid frame`, async (t) => {
        await expectEcho(t, after, Op.Binary, 'valid first');
        await expectServerClose(t, after, 1002);
      });
    }
  });
}

t.test('3.x RSV bit on a continuation frame fails with 1002 and drops the message', async (t) => {
  for (const rsv of [1, 2, 4]) {
    const c = await RawClient.connect(server.port);
    c.send(
      { opcode: Op.Text, payload: 'start-', fin: false },
      { opcode: Op.Continuation, payload: 'end', rsv },
    );
    await expectServerClose(t, c, 1002);
  }
});

t.test('3.x RSV1 with permessage-deflate offered but not negotiated fails with 1002', async (t) => {
  const c = await RawClient.connect(server.port, {
    headers: ['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits'],
  });
  t.notOk(c.response?.headers.has('sec-websocket-extensions'), 'no extension accepted');
  c.send({
    opcode: Op.Text,
    payload: Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
    rsv: 4,
  });
  await expectServerClose(t, c, 1002);
});

t.test('no error logged', async (t) => {
  t.same(server.errors(), []);
});
