/**
 * max_message_size (RFC 6455 §7.4.1: 1009 "message too big"): a message at the limit is
 * echoed; one byte more fails with 1009 as soon as a frame header announces it, before
 * any of the payload is sent, for single frames and for fragments that add up past the
 * limit. Absurd 64-bit lengths fail (1009, or 1002 when the most significant bit is set,
 * §5.2) without the server waiting for or allocating that payload.
 */
import t from 'tap';

import { echoSource, startTestServer } from '../helpers/server.js';
import {
  encodeFrame,
  expectEcho,
  expectNormalClose,
  expectServerClose,
  Op,
  payloadFor,
  RawClient,
  type FrameSpec,
} from '../helpers/raw-client.js';

const LIMIT = 1024;
const SMALL = 100;
const server = await startTestServer({
  limits: { max_message_size: LIMIT },
  services: [
    { name: 'echo', request_target: '/echo', source: echoSource, instances: 2 },
    {
      name: 'small',
      request_target: '/small',
      source: echoSource,
      instances: 1,
      max_inbound_message_size: SMALL,
    },
  ],
});
const defaults = await startTestServer();
t.teardown(async () => {
  await server.stop();
  await defaults.stop();
});

/** Just the header (and mask key) of a frame declaring `length` payload bytes. */
function headerOnly(spec: FrameSpec & { length: number | bigint }): Buffer {
  return encodeFrame({ ...spec, payload: Buffer.alloc(0) });
}

for (const [kind, opcode] of [
  ['text', Op.Text],
  ['binary', Op.Binary],
] as const) {
  t.test(`${kind} message of exactly max_message_size is echoed`, async (t) => {
    const c = await RawClient.connect(server.port);
    const payload = payloadFor(opcode, LIMIT);
    c.send({ opcode, payload });
    await expectEcho(t, c, opcode, payload);
    await expectNormalClose(t, c);
  });

  t.test(
    `${kind} frame header declaring max_message_size + 1: 1009 before any payload`,
    async (t) => {
      const c = await RawClient.connect(server.port);
      c.write(headerOnly({ opcode, length: LIMIT + 1 }));
      await expectServerClose(t, c, 1009, { requireFin: true });
    },
  );

  t.test(`${kind} message of max_message_size + 1, sent whole: 1009`, async (t) => {
    const c = await RawClient.connect(server.port);
    c.send({ opcode, payload: payloadFor(opcode, LIMIT + 1) });
    await expectServerClose(t, c, 1009);
  });

  t.test(`${kind} fragments adding up to exactly the limit are echoed`, async (t) => {
    const c = await RawClient.connect(server.port);
    const payload = payloadFor(opcode, LIMIT);
    c.send(
      { opcode, payload: payload.subarray(0, 600), fin: false },
      { opcode: Op.Ping, payload: 'pings do not count' },
      { opcode: Op.Continuation, payload: payload.subarray(600) },
    );
    const pong = await c.nextFrame();
    t.equal(pong.opcode, Op.Pong, 'pong');
    await expectEcho(t, c, opcode, payload);
    await expectNormalClose(t, c);
  });

  t.test(`${kind} fragment header crossing the limit: 1009 before its payload`, async (t) => {
    const c = await RawClient.connect(server.port);
    const payload = payloadFor(opcode, 600);
    c.send({ opcode, payload, fin: false });
    c.write(headerOnly({ opcode: Op.Continuation, length: LIMIT - 600 + 1 }));
    await expectServerClose(t, c, 1009, { requireFin: true });
  });
}

t.test('1-byte fragments: the one past the limit fails with 1009', async (t) => {
  const c = await RawClient.connect(server.port);
  const frames: FrameSpec[] = [];
  for (let i = 0; i <= LIMIT; i++) {
    frames.push({ opcode: i === 0 ? Op.Binary : Op.Continuation, payload: 'x', fin: false });
  }
  c.send(...frames);
  await expectServerClose(t, c, 1009, { requireFin: true });
});

t.test('a 16-bit length over the limit with a 64-bit encoding: 1009 from the header', async (t) => {
  const c = await RawClient.connect(server.port);
  c.write(headerOnly({ opcode: Op.Binary, length: 2000, lengthForm: 64 }));
  await expectServerClose(t, c, 1009, { requireFin: true });
});

t.test('64-bit lengths that would wrap 32-bit arithmetic: 1009', async (t) => {
  for (const length of [2n ** 32n, 2n ** 32n + 10n, 2n ** 32n - 1n, 2n ** 53n + 1n]) {
    const c = await RawClient.connect(server.port);
    c.write(headerOnly({ opcode: Op.Binary, length }));
    await t.test(`length ${length}`, (t) =>
      expectServerClose(t, c, 1009, { requireFin: true }).then(() => undefined),
    );
  }
});

t.test('a header declaring 2^63 - 1 bytes fails with 1009 or 1002', async (t) => {
  for (const srv of [server, defaults]) {
    const c = await RawClient.connect(srv.port);
    c.write(headerOnly({ opcode: Op.Binary, length: 2n ** 63n - 1n }));
    const r = await c.expectClose().catch((e: Error) => e);
    if (r instanceof Error) {
      t.fail(`no close: ${r.message}`);
      continue;
    }
    t.ok(r.code === 1009 || r.code === 1002, `close ${r.code}`);
    t.not(r.tcp, 'timeout', 'TCP ended');
    t.same(c.violations, [], 'server frames follow RFC 6455');
  }
});

t.test('a header with the 64-bit length MSB set fails with 1002 (§5.2)', async (t) => {
  for (const length of [2n ** 63n, 2n ** 64n - 1n, 2n ** 63n + 5n]) {
    for (const srv of [server, defaults]) {
      const c = await RawClient.connect(srv.port);
      c.write(headerOnly({ opcode: Op.Binary, length }));
      await t.test(`length ${length}`, (t) =>
        expectServerClose(t, c, 1002, { requireFin: true }).then(() => undefined),
      );
    }
  }
});

t.test('default limit: 16 MiB + 1 declared fails with 1009 from the header', async (t) => {
  const c = await RawClient.connect(defaults.port);
  c.write(headerOnly({ opcode: Op.Text, length: 16 * 1024 * 1024 + 1 }));
  await expectServerClose(t, c, 1009, { requireFin: true });
});

t.test('per-service max_inbound_message_size', async (t) => {
  const ok = await RawClient.connect(server.port, { path: '/small' });
  const payload = payloadFor(Op.Text, SMALL);
  ok.send({ opcode: Op.Text, payload });
  await expectEcho(t, ok, Op.Text, payload);
  await expectNormalClose(t, ok);

  const over = await RawClient.connect(server.port, { path: '/small' });
  over.write(headerOnly({ opcode: Op.Text, length: SMALL + 1 }));
  await expectServerClose(t, over, 1009, { requireFin: true });

  const other = await RawClient.connect(server.port);
  const bigger = payloadFor(Op.Text, SMALL + 1);
  other.send({ opcode: Op.Text, payload: bigger });
  await expectEcho(t, other, Op.Text, bigger);
  await expectNormalClose(t, other);
});

t.test('the server keeps serving after every limit violation', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Text, payload: 'still here' });
  await expectEcho(t, c, Op.Text, 'still here');
  await expectNormalClose(t, c);
});

t.test('no error logged', async (t) => {
  t.same(server.errors(), []);
  t.same(defaults.errors(), []);
});
