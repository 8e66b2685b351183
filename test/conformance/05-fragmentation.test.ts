/**
 * Autobahn 5.x (fragmentation, RFC 6455 §5.4): fragmented messages are reassembled and
 * echoed whole, control frames may come between fragments and are answered at once,
 * control frames may not be fragmented, and continuation frames need a message to
 * continue (a data frame may not start inside one). Violations fail with 1002.
 */
import t from 'tap';

import { startTestServer } from '../helpers/server.js';
import {
  delay,
  describeFrame,
  encodeFrame,
  expectEcho,
  expectNormalClose,
  expectServerClose,
  Op,
  payloadFor,
  RawClient,
  type Asserts,
  type FrameSpec,
} from '../helpers/raw-client.js';

const server = await startTestServer();
t.teardown(() => server.stop());

/** How a case's frames go on the wire (Autobahn: all at once, octet-wise, frame-wise). */
type Mode = 'together' | 'octets' | 'frames';

async function sendAs(c: RawClient, frames: FrameSpec[], mode: Mode): Promise<void> {
  const bytes = frames.map(encodeFrame);
  if (mode === 'together') c.write(Buffer.concat(bytes));
  else if (mode === 'octets') await c.writeChopped(Buffer.concat(bytes), 1, 1);
  else {
    for (const b of bytes) {
      c.write(b);
      await delay(20);
    }
  }
}

async function expectPong(t: Asserts, c: RawClient, payload: string): Promise<void> {
  try {
    const f = await c.nextFrame();
    t.equal(f.opcode, Op.Pong, `pong (${describeFrame(f)})`);
    t.equal(f.payload.toString(), payload, 'pong payload is the ping payload');
  } catch (e) {
    t.fail(`no pong: ${(e as Error).message}`);
  }
}

const frag = (opcode: number, payload: string, fin: boolean): FrameSpec => ({
  opcode,
  payload,
  fin,
});

t.test('5.1 ping fragmented into 2 fragments fails with 1002', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(frag(Op.Ping, 'fragment1', false), frag(Op.Continuation, 'fragment2', true));
  await expectServerClose(t, c, 1002);
});

t.test('5.2 pong fragmented into 2 fragments fails with 1002', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(frag(Op.Pong, 'fragment1', false), frag(Op.Continuation, 'fragment2', true));
  await expectServerClose(t, c, 1002);
});

const TWO = [frag(Op.Text, 'fragment1', false), frag(Op.Continuation, 'fragment2', true)];
const WITH_PING = [TWO[0]!, frag(Op.Ping, 'ping payload', true), TWO[1]!];

for (const [n, mode] of [
  [3, 'together'],
  [4, 'octets'],
  [5, 'frames'],
] as const) {
  t.test(`5.${n} text in 2 fragments (${mode})`, async (t) => {
    const c = await RawClient.connect(server.port);
    await sendAs(c, TWO, mode);
    await expectEcho(t, c, Op.Text, 'fragment1fragment2');
    await expectNormalClose(t, c);
  });
}

for (const [n, mode] of [
  [6, 'together'],
  [7, 'octets'],
  [8, 'frames'],
] as const) {
  t.test(`5.${n} text in 2 fragments with a ping in between (${mode})`, async (t) => {
    const c = await RawClient.connect(server.port);
    await sendAs(c, WITH_PING, mode);
    await expectPong(t, c, 'ping payload');
    await expectEcho(t, c, Op.Text, 'fragment1fragment2');
    await expectNormalClose(t, c);
  });
}

for (const [first, fin] of [
  [9, true],
  [12, false],
] as const) {
  (['together', 'octets', 'frames'] as const).forEach((mode, i) => {
    t.test(
      `5.${first + i} continuation (FIN=${fin ? 1 : 0}) with nothing to continue, then text (${mode})`,
      async (t) => {
        const c = await RawClient.connect(server.port);
        await sendAs(
          c,
          [
            frag(Op.Continuation, 'non-continuation payload', fin),
            frag(Op.Text, 'Hello, world!', true),
          ],
          mode,
        );
        await expectServerClose(t, c, 1002);
      },
    );
  });
}

t.test('5.15 text in 2 fragments, stray continuation, text: echo then 1002', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(
    frag(Op.Text, 'fragment1', false),
    frag(Op.Continuation, 'fragment2', true),
    frag(Op.Continuation, 'fragment3', false),
    frag(Op.Text, 'fragment4', true),
  );
  await expectEcho(t, c, Op.Text, 'fragment1fragment2');
  await expectServerClose(t, c, 1002);
});

for (const [n, fin] of [
  [16, false],
  [17, true],
] as const) {
  t.test(
    `5.${n} twice: continuation (FIN=${fin ? 1 : 0}) with nothing to continue, then text in 2 fragments`,
    async (t) => {
      const c = await RawClient.connect(server.port);
      const round = [
        frag(Op.Continuation, 'fragment1', fin),
        frag(Op.Text, 'fragment2', false),
        frag(Op.Continuation, 'fragment3', true),
      ];
      c.send(...round, ...round);
      await expectServerClose(t, c, 1002);
    },
  );
}

t.test('5.18 text in 2 fragments, both with opcode text, fails with 1002', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(frag(Op.Text, 'fragment1', false), frag(Op.Text, 'fragment2', true));
  await expectServerClose(t, c, 1002);
});

for (const [n, sync] of [
  [19, false],
  [20, true],
] as const) {
  t.test(
    `5.${n} text in 5 fragments with 2 pings in between${sync ? ', frame by frame' : ''}`,
    async (t) => {
      const c = await RawClient.connect(server.port);
      const frames = [
        frag(Op.Text, 'fragment1', false),
        frag(Op.Continuation, 'fragment2', false),
        frag(Op.Ping, 'pongme 1!', true),
        frag(Op.Continuation, 'fragment3', false),
        frag(Op.Continuation, 'fragment4', false),
        frag(Op.Ping, 'pongme 2!', true),
        frag(Op.Continuation, 'fragment5', true),
      ];
      await sendAs(c, frames.slice(0, 3), sync ? 'frames' : 'together');
      // The first pong must come while the message is still incomplete.
      await expectPong(t, c, 'pongme 1!');
      await delay(100);
      await sendAs(c, frames.slice(3), sync ? 'frames' : 'together');
      await expectPong(t, c, 'pongme 2!');
      await expectEcho(t, c, Op.Text, 'fragment1fragment2fragment3fragment4fragment5');
      await expectNormalClose(t, c);
    },
  );
}

t.test('5.x binary in 3 fragments, including an empty middle one', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(
    { opcode: Op.Binary, payload: Buffer.from([0, 1, 2]), fin: false },
    { opcode: Op.Continuation, fin: false },
    { opcode: Op.Continuation, payload: Buffer.from([0xff, 0xfe]), fin: true },
  );
  await expectEcho(t, c, Op.Binary, Buffer.from([0, 1, 2, 0xff, 0xfe]));
  await expectNormalClose(t, c);
});

t.test('5.x text in 1-byte fragments (multi-byte characters split)', async (t) => {
  const c = await RawClient.connect(server.port);
  const payload = payloadFor(Op.Text, 300);
  c.send(
    ...[...payload].map((byte, i) => ({
      opcode: i === 0 ? Op.Text : Op.Continuation,
      payload: Buffer.from([byte]),
      fin: i === payload.length - 1,
    })),
  );
  await expectEcho(t, c, Op.Text, payload);
  await expectNormalClose(t, c);
});

t.test('5.x 1000 fragments of a binary message, with pongs and pings between', async (t) => {
  const c = await RawClient.connect(server.port);
  const payload = payloadFor(Op.Binary, 10000);
  const frames: FrameSpec[] = [];
  for (let i = 0; i < 1000; i++) {
    frames.push({
      opcode: i === 0 ? Op.Binary : Op.Continuation,
      payload: payload.subarray(i * 10, i * 10 + 10),
      fin: i === 999,
    });
    if (i % 100 === 50) frames.push({ opcode: Op.Pong, payload: 'unsolicited' });
    if (i % 250 === 100) frames.push({ opcode: Op.Ping, payload: `p${i}` });
  }
  c.send(...frames);
  for (const i of [100, 350, 600, 850]) await expectPong(t, c, `p${i}`);
  await expectEcho(t, c, Op.Binary, payload);
  await expectNormalClose(t, c);
});

t.test('5.x a fragmented message followed by another one: both echoed', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(
    frag(Op.Text, 'a', false),
    frag(Op.Continuation, 'b', true),
    { opcode: Op.Binary, payload: 'c', fin: false },
    { opcode: Op.Continuation, payload: 'd', fin: true },
    frag(Op.Text, 'e', true),
  );
  await expectEcho(t, c, Op.Text, 'ab');
  await expectEcho(t, c, Op.Binary, 'cd');
  await expectEcho(t, c, Op.Text, 'e');
  await expectNormalClose(t, c);
});

t.test('5.x unfinished text message followed by a new binary frame fails with 1002', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(frag(Op.Text, 'fragment1', false), { opcode: Op.Binary, payload: 'x', fin: true });
  await expectServerClose(t, c, 1002);
});

t.test(
  '5.x unfinished message followed by a new non-final text frame fails with 1002',
  async (t) => {
    const c = await RawClient.connect(server.port);
    c.send(frag(Op.Binary, 'fragment1', false), frag(Op.Text, 'fragment2', false));
    await expectServerClose(t, c, 1002);
  },
);

t.test('5.x a close between fragments closes normally; the message is dropped', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(frag(Op.Text, 'fragment1', false));
  await delay(20);
  await expectNormalClose(t, c);
});

t.test('no error logged', async (t) => {
  t.same(server.errors(), []);
});
