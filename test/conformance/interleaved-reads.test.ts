/**
 * Frames left unfinished at the end of a read, on many connections of one worker at once.
 * A connection at rest holds no frame parser state: it parses with its worker's, and keeps
 * a state of its own only while a frame (or a fragmented message) is unfinished
 * (docs/memory.md). These cases leave more connections mid-frame than the worker keeps
 * spare states for, in every way a frame can be cut, finish them in another order while
 * other connections parse whole frames, and check every echo and every close.
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

// One worker: every connection below shares its parser state and its spares.
const server = await startTestServer({ workers: 1 });
t.teardown(() => server.stop());

/** How connection i cuts what it sends: its two halves, and the echo the whole deserves. */
function cutFor(i: number): { first: Buffer; second: Buffer; opcode: number; payload: Buffer } {
  const opcode = i % 2 ? Op.Binary : Op.Text;
  const payload = payloadFor(opcode, 100 + i * 7);
  const whole = encodeFrame({ opcode, payload });
  switch (i % 5) {
    case 0: // inside the header (after its first byte)
      return { first: whole.subarray(0, 1), second: whole.subarray(1), opcode, payload };
    case 1: // inside the masking key
      return { first: whole.subarray(0, 4), second: whole.subarray(4), opcode, payload };
    case 2: // inside the payload
      return { first: whole.subarray(0, 40), second: whole.subarray(40), opcode, payload };
    case 3: {
      // between the fragments of a message, then inside the continuation
      const a = encodeFrame({ opcode, payload: payload.subarray(0, 30), fin: false });
      const b = encodeFrame({ opcode: Op.Continuation, payload: payload.subarray(30) });
      const both = Buffer.concat([a, b]);
      return {
        first: both.subarray(0, a.length + 10),
        second: both.subarray(a.length + 10),
        opcode,
        payload,
      };
    }
    default: {
      // inside a ping's payload that comes first (the pong is checked with the echo)
      const ping = encodeFrame({ opcode: Op.Ping, payload: Buffer.from(`ping ${i}`) });
      const both = Buffer.concat([ping, whole]);
      return { first: both.subarray(0, 5), second: both.subarray(5), opcode, payload };
    }
  }
}

t.test('70 connections left mid-frame at once, finished in reverse order', async (t) => {
  const n = 70; // more than the worker keeps spare parser states for (64)
  const clients = await Promise.all(
    Array.from({ length: n }, () => RawClient.connect(server.port)),
  );
  const cuts = clients.map((_, i) => cutFor(i));
  clients.forEach((c, i) => c.write(cuts[i]!.first));
  await delay(100); // read by the server on their own

  // Meanwhile whole frames on another connection parse with the worker's state.
  const bystander = await RawClient.connect(server.port);
  for (let k = 0; k < 5; k++) {
    const payload = payloadFor(Op.Text, 20 + k);
    bystander.send({ opcode: Op.Text, payload });
    await expectEcho(t, bystander, Op.Text, payload);
  }

  for (let i = n - 1; i >= 0; i--) clients[i]!.write(cuts[i]!.second);
  for (const [i, c] of clients.entries()) {
    const cut = cuts[i]!;
    const m = await c.readMessage();
    t.equal(m.opcode, cut.opcode, `connection ${i}: echo has the same opcode`);
    t.ok(m.payload.equals(cut.payload), `connection ${i}: echoed payload intact`);
    if (i % 5 === 4) {
      t.same(
        m.control.map((f) => [f.opcode, f.payload.toString()]),
        [[Op.Pong, `ping ${i}`]],
        `connection ${i}: the split ping was answered first`,
      );
    }
  }
  // Every connection is at rest again and still parses: one more whole message each.
  for (const c of clients) {
    c.send({ opcode: Op.Binary, payload: Buffer.from('again') });
    await expectEcho(t, c, Op.Binary, Buffer.from('again'));
  }
  await Promise.all(clients.map((c) => expectNormalClose(t, c)));
  await expectNormalClose(t, bystander);
  t.same(server.errors(), [], 'no error in the log');
});

t.test('a protocol error mid-way through others only closes its own connection', async (t) => {
  const waiting = await RawClient.connect(server.port);
  const payload = payloadFor(Op.Binary, 300);
  const frame = encodeFrame({ opcode: Op.Binary, payload });
  waiting.write(frame.subarray(0, 50));

  // Fails inside a split header (reserved bits): the failed state is its own.
  const bad = await RawClient.connect(server.port);
  const broken = encodeFrame({ opcode: Op.Text, payload: 'x', rsv: 4 });
  bad.write(broken.subarray(0, 1));
  await delay(50);
  bad.write(broken.subarray(1));
  await expectServerClose(t, bad, 1002);

  const fresh = await RawClient.connect(server.port);
  fresh.send({ opcode: Op.Text, payload: 'fresh' });
  await expectEcho(t, fresh, Op.Text, 'fresh');

  waiting.write(frame.subarray(50));
  await expectEcho(t, waiting, Op.Binary, payload);
  await expectNormalClose(t, waiting);
  await expectNormalClose(t, fresh);
});
