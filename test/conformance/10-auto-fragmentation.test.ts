/**
 * Autobahn 10.x (auto-fragmentation): a message the client fragments at an arbitrary size
 * is echoed whole, and with `auto_fragment_size` the server itself sends big messages as
 * a first frame plus continuations of at most that size, FIN only on the last, which
 * reassemble to exactly the message (fragments may cut UTF-8 characters, §5.6).
 */
import t from 'tap';

import { startTestServer } from '../helpers/server.js';
import {
  describeFrame,
  expectEcho,
  expectNormalClose,
  Op,
  payloadFor,
  RawClient,
  samePayload,
  type Asserts,
  type FrameSpec,
} from '../helpers/raw-client.js';

const FRAGMENT = 1000;
const plain = await startTestServer();
const fragmenting = await startTestServer({ limits: { auto_fragment_size: FRAGMENT } });
t.teardown(async () => {
  await plain.stop();
  await fragmenting.stop();
});

function fragmented(opcode: number, payload: Buffer, size: number): FrameSpec[] {
  const frames: FrameSpec[] = [];
  for (let at = 0; at < payload.length; at += size) {
    frames.push({
      opcode: at === 0 ? opcode : Op.Continuation,
      payload: payload.subarray(at, at + size),
      fin: at + size >= payload.length,
    });
  }
  return frames;
}

const KINDS = [
  ['text', Op.Text],
  ['binary', Op.Binary],
] as const;

for (const [kind, opcode] of KINDS) {
  t.test(`10.1.1 64 KiB ${kind} message auto-fragmented by the client at 1300 bytes`, async (t) => {
    for (const server of [plain, fragmenting]) {
      const c = await RawClient.connect(server.port);
      const payload = payloadFor(opcode, 65536);
      c.send(...fragmented(opcode, payload, 1300));
      await expectEcho(t, c, opcode, payload);
      await expectNormalClose(t, c);
    }
  });
}

/** Reads one message and checks it came in frames of exactly `FRAGMENT` bytes. */
async function expectFragmentedEcho(
  t: Asserts,
  c: RawClient,
  opcode: number,
  payload: Buffer,
): Promise<void> {
  const m = await c.readMessage();
  const want = Math.max(1, Math.ceil(payload.length / FRAGMENT));
  t.equal(m.frames.length, want, `${want} frame(s)`);
  const shapes = m.frames.map((f, i) => ({
    opcode: f.opcode,
    fin: f.fin,
    length: f.payload.length,
    index: i,
  }));
  const expected = shapes.map((_, i) => ({
    opcode: i === 0 ? opcode : Op.Continuation,
    fin: i === shapes.length - 1,
    length: i === shapes.length - 1 ? payload.length - FRAGMENT * i : FRAGMENT,
    index: i,
  }));
  t.same(shapes, expected, 'first frame carries the opcode, FIN only on the last, full frames');
  samePayload(t, m.payload, payload, 'reassembled message');
  t.same(m.control.map(describeFrame), [], 'no control frames in between');
}

for (const [kind, opcode] of KINDS) {
  t.test(`10.x server auto_fragment_size ${FRAGMENT}: 64 KiB ${kind} message`, async (t) => {
    const c = await RawClient.connect(fragmenting.port);
    const payload = payloadFor(opcode, 65536);
    c.send({ opcode, payload });
    await expectFragmentedEcho(t, c, opcode, payload);
    await expectNormalClose(t, c);
  });

  t.test(`10.x server auto_fragment_size ${FRAGMENT}: ${kind} sizes at the boundary`, async (t) => {
    const c = await RawClient.connect(fragmenting.port);
    for (const n of [0, 1, FRAGMENT - 1, FRAGMENT, FRAGMENT + 1, 2 * FRAGMENT, 2 * FRAGMENT + 1]) {
      const payload = payloadFor(opcode, n);
      c.send({ opcode, payload });
      await t.test(`${n} bytes`, (t) => expectFragmentedEcho(t, c, opcode, payload));
    }
    await expectNormalClose(t, c);
  });
}

t.test('10.x server auto-fragmentation: a 1 MiB text message and a ping', async (t) => {
  const c = await RawClient.connect(fragmenting.port);
  const payload = payloadFor(Op.Text, 1 << 20);
  c.send({ opcode: Op.Text, payload }, { opcode: Op.Ping, payload: 'during' });
  // The pong may come before, inside (between fragments, §5.4) or after the message.
  const m = await c.readMessage();
  samePayload(t, m.payload, payload, 'reassembled message');
  t.ok(
    m.frames.every((f) => f.payload.length <= FRAGMENT),
    'no frame over auto_fragment_size',
  );
  const pongs = [...m.control, ...c.pending()].filter((f) => f.opcode === Op.Pong);
  if (pongs.length === 0) pongs.push(await c.nextFrame());
  t.equal(pongs[0]?.opcode, Op.Pong, 'pong received');
  t.equal(pongs[0]?.payload.toString(), 'during', 'pong payload');
  c.send({ opcode: Op.Close, payload: Buffer.from([0x03, 0xe8]) });
  const r = await c.expectClose(undefined, { reply: false });
  t.equal(r.code, 1000, 'close 1000 echoed');
  t.equal(r.tcp, 'fin', 'clean TCP close');
  t.same(c.violations, [], 'server frames follow RFC 6455');
});

t.test('10.x client fragments of many sizes on the fragmenting server', async (t) => {
  const c = await RawClient.connect(fragmenting.port);
  for (const size of [1, 7, 999, 1000, 1001, 4096]) {
    const payload = payloadFor(Op.Text, 5000);
    c.send(...fragmented(Op.Text, payload, size));
    await t.test(`client fragments of ${size}`, (t) =>
      expectFragmentedEcho(t, c, Op.Text, payload),
    );
  }
  await expectNormalClose(t, c);
});

t.test('no error logged', async (t) => {
  t.same(plain.errors(), []);
  t.same(fragmenting.errors(), []);
});
