/**
 * Autobahn 1.x (framing): text and binary messages of every length-encoding boundary
 * echoed intact, whole and chopped; plus the masking and header rules of RFC 6455 §5.2-5.3
 * (masked client frames only, any mask key, headers split anywhere).
 */
import t from 'tap';

import { startTestServer } from '../helpers/server.js';
import {
  delay,
  encodeFrame,
  expectEcho,
  expectNormalClose,
  expectServerClose,
  Op,
  payloadFor,
  RawClient,
} from '../helpers/raw-client.js';

const server = await startTestServer();
t.teardown(() => server.stop());

const SIZES = [0, 125, 126, 127, 128, 65535, 65536];

for (const [group, opcode, kind] of [
  ['1.1', Op.Text, 'text'],
  ['1.2', Op.Binary, 'binary'],
] as const) {
  SIZES.forEach((size, i) => {
    t.test(`${group}.${i + 1} ${kind} message, payload ${size} bytes`, async (t) => {
      const c = await RawClient.connect(server.port);
      const payload = payloadFor(opcode, size);
      c.send({ opcode, payload });
      await expectEcho(t, c, opcode, payload);
      await expectNormalClose(t, c);
    });
  });

  t.test(`${group}.8 ${kind} message, payload 65536 bytes, sent in chops of 997`, async (t) => {
    const c = await RawClient.connect(server.port);
    const payload = payloadFor(opcode, 65536);
    await c.writeChopped(encodeFrame({ opcode, payload }), 997);
    await expectEcho(t, c, opcode, payload);
    await expectNormalClose(t, c);
  });
}

t.test('1.x payload lengths around mask words and vectors, in one connection', async (t) => {
  const sizes = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 4095, 4096, 4097];
  const c = await RawClient.connect(server.port);
  for (const opcode of [Op.Text, Op.Binary]) {
    for (const size of sizes) {
      const payload = payloadFor(opcode, size);
      c.send({ opcode, payload });
      await expectEcho(t, c, opcode, payload);
    }
  }
  await expectNormalClose(t, c);
});

t.test('1.x many messages in one write are echoed in order', async (t) => {
  const c = await RawClient.connect(server.port);
  const payloads = SIZES.map((n, i) => payloadFor(i % 2 ? Op.Binary : Op.Text, n));
  c.write(
    Buffer.concat(
      payloads.map((p, i) => encodeFrame({ opcode: i % 2 ? Op.Binary : Op.Text, payload: p })),
    ),
  );
  for (const [i, p] of payloads.entries()) {
    await expectEcho(t, c, i % 2 ? Op.Binary : Op.Text, p);
  }
  await expectNormalClose(t, c);
});

t.test('1.x frame headers split at every byte (7-, 16- and 64-bit lengths)', async (t) => {
  const c = await RawClient.connect(server.port);
  for (const size of [20, 300, 70000]) {
    const payload = payloadFor(Op.Binary, size);
    const frame = encodeFrame({ opcode: Op.Binary, payload });
    const headerLength = size < 126 ? 6 : size < 65536 ? 8 : 14;
    for (let cut = 1; cut <= headerLength; cut++) {
      c.write(frame.subarray(0, cut));
      await delay(5);
      c.write(frame.subarray(cut));
      await expectEcho(t, c, Op.Binary, payload);
    }
  }
  await expectNormalClose(t, c);
});

t.test('1.x a mask key of zeros and of 0xff bytes still unmasks correctly', async (t) => {
  const c = await RawClient.connect(server.port);
  for (const key of [Buffer.alloc(4), Buffer.alloc(4, 0xff), Buffer.from([1, 2, 3, 4])]) {
    const payload = payloadFor(Op.Text, 1000);
    c.send({ opcode: Op.Text, payload, mask: key });
    await expectEcho(t, c, Op.Text, payload);
  }
  await expectNormalClose(t, c);
});

t.test('1.x non-minimal length encodings are still framed correctly', async (t) => {
  // §5.2 asks senders for the minimal form; a lenient server accepts the others, a strict
  // one fails with 1002. Either way the stream must not be misparsed.
  const c = await RawClient.connect(server.port);
  const payload = payloadFor(Op.Text, 10);
  c.send({ opcode: Op.Text, payload, lengthForm: 16 });
  const f = await c.nextFrame().catch(() => undefined);
  if (f && f.opcode === Op.Close) {
    t.equal(f.payload.readUInt16BE(0), 1002, 'rejected with 1002');
    c.destroy();
    return;
  }
  t.ok(f && f.opcode === Op.Text && f.payload.equals(payload), 'accepted and echoed intact');
  c.send({ opcode: Op.Binary, payload, lengthForm: 64 });
  await expectEcho(t, c, Op.Binary, payload);
  await expectNormalClose(t, c);
});

t.test('1.x an unmasked client frame is refused with 1002 (§5.1)', async (t) => {
  for (const opcode of [Op.Text, Op.Binary, Op.Ping, Op.Close]) {
    const c = await RawClient.connect(server.port);
    const payload = opcode === Op.Close ? Buffer.from([0x03, 0xe8]) : Buffer.from('unmasked');
    c.send({ opcode, payload, mask: false });
    await expectServerClose(t, c, 1002);
  }
});

t.test('1.x an unmasked frame after a valid one: echo first, then 1002', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Text, payload: 'valid' }, { opcode: Op.Text, payload: 'bad', mask: false });
  await expectEcho(t, c, Op.Text, 'valid');
  await expectServerClose(t, c, 1002);
});

t.test('no error logged', async (t) => {
  t.same(server.errors(), []);
});
